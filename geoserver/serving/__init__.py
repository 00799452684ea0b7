"""Serving riders: the nearest facilities (one point or a batch) and the OGC items of a layer, as declared operations.

Domain code for serving (layers, index, nearest, query, hours) still lives in ``geoserver.core``; this package holds
the use cases built on it. Flask- and folium-free.
"""
