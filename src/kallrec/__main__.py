from kallrec.cli import main

main()
