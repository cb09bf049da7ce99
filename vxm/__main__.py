from vxm.cli import main

main()
