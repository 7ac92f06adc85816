from matforge.cli.main import run

run()
