"""Files inside the server's roots: the files API, confinement (race-free walks on held
descriptors), whole trees, watching, git clones and archives."""
