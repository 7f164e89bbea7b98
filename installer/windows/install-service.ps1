# Installs labedge as a machine-wide Windows service. Run as Administrator:
#   .\install-service.ps1 -Config C:\path\labedge.toml [-Tray]
# from the folder build (dist\labedge, where labedge.exe and labedge-service.exe are) or from
# _internal\installer\windows inside it. Everything is done by `labedge service install`:
# it runs `labedge check` on the config (and refuses a bad one with its message, so a service that
# would restart-loop is never registered), copies it to %ProgramData%\labedge\config as a
# machine-wide config (mode = "system"), creates %ProgramData%\labedge\{state,spool,log} readable
# only by SYSTEM and Administrators, lets every user read status.json (what the tray shows), and
# registers and starts the WinSW service. -Tray starts the tray for every user who logs in.
param([Parameter(Mandatory = $true)][string]$Config, [switch]$Tray)
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$exe = @((Join-Path $here "labedge.exe"), (Join-Path $here "..\..\..\labedge.exe")) |
    Where-Object { Test-Path $_ } | Select-Object -First 1
if (-not $exe) { throw "labedge.exe not found beside this script or three folders up (the folder build)" }

# Say what is wrong with the config first, in labedge's words (exit 2 = bad config).
& $exe check --config $Config
if ($LASTEXITCODE -ne 0) { throw "labedge check refused $Config (exit $LASTEXITCODE); fix the error above, nothing was installed" }

$serviceArgs = @("service", "install", "--config", $Config)
if ($Tray) { $serviceArgs += "--tray" }
& $exe @serviceArgs
if ($LASTEXITCODE -ne 0) { throw "labedge service install failed (exit $LASTEXITCODE); see the message above" }
& $exe service status
