from swa_bench.cli import main

main()
