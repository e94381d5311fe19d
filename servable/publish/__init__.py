"""Publishing (Zenodo DOIs), citing and FAIR self-assessment of bundles."""
