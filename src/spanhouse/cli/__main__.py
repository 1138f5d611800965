from spanhouse.cli import main

main()
