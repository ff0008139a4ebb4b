"""The ``recon`` command line: parsing, one library call per command, exit codes."""
