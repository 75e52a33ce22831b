from aiexport.cli import main

main()
