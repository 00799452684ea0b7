"""Planning: coverage of demand, the gaps it leaves, and new sites (siting), as declared operations.

``coverage``: the ``coverage``, ``gaps`` and ``planning_page`` operations; ``siting``: the ``siting`` operation;
``solvers/``: the siting solvers, one registered object per file; ``output``: the GeoJSON of gaps and proposed sites,
written once for the API, the planning page and the reports.

Default catchment: when neither ``radius_m`` nor ``minutes`` is given, every planning entry point (HTTP, the
planning page, the CLI) uses the layer spec's ``catchment_radius_m`` (``layers/<layer>.toml``; stations: 1000 m).

The numeric domain code (demand, coverage, network, siting, planning) still lives in ``geoserver.core``.
Flask- and folium-free.
"""
