"""WinRM as a Windows host serves it: HTTP(S) listener, authentication, WS-Management envelopes and
the WinRS shell resource ([MS-WSMV]). It runs command lines through the host's shell (winsim/shell/)
and knows nothing of the tools or the registry."""
