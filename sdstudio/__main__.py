from sdstudio.app import main

raise SystemExit(main())
