"""The command line. harness.cli.main holds the parser and the exit codes; each command
lives in a module named after it."""
