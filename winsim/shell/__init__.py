"""What runs a command line on a winsim host: the command line rules (cmdline), cmd.exe (cmdexe),
PowerShell (powershell/), processes and named mutexes; machine.execute is the entry WinRM calls.
Native programs are the host's tools (winsim/tools/), reached through `host.run_tool`."""
