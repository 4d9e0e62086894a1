"""Open311 GeoReport v2 over the platform: a client of intake and the tracker."""
