"""servq's built-in industry plugins, one package each (``plugins.<id>``)."""
