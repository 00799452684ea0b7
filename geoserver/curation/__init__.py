"""Data management (curation): import, geocode, history, rollback and export, as declared operations over
``core.manage.DataManager`` (whose public methods stay the interface to the storage).

The domain code (tabular, importer, edit, store, manage, export, auth) still lives in ``geoserver.core``; this
package holds the use cases. Flask- and folium-free.
"""
