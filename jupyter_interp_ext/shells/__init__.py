"""Persistent shells (sessions), commands, background processes, the process trees they start
and the ports those processes listen on."""
