"""``python -m kallrec.sip``: the SIP process (started by kallrec.server)."""

from kallrec.sip.process import main

main()
