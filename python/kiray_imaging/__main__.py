from kiray_imaging.cli import main

raise SystemExit(main())
