"""Publishing (Zenodo DOIs), citing and FAIR self-assessment of bundles (DESIGN 10)."""
