"""One module per command (or group of commands): parse options, make one library call, emit."""
