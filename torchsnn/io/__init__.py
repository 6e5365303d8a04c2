"""Data out: spike trains, rates and final weights of a run in community formats (NWB, ``pip install -e ".[nwb]"``)."""
