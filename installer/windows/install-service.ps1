# Installs labedge as a Windows service (run as Administrator from the labedge install folder).
#   .\install-service.ps1 -Config C:\path\labedge.toml
param([Parameter(Mandatory = $true)][string]$Config)
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$data = Join-Path $env:ProgramData "labedge"
New-Item -ItemType Directory -Force -Path $data | Out-Null
# Check the config before installing anything: errors name the key.
& (Join-Path $here "labedge.exe") status --config $Config | Out-Null
if ($LASTEXITCODE -ne 0) { throw "labedge rejected $Config; fix the error above first" }
Copy-Item $Config (Join-Path $data "labedge.toml") -Force
# Only SYSTEM and Administrators may read the config folder (it names the device key).
icacls $data /inheritance:r /grant:r "SYSTEM:(OI)(CI)F" "Administrators:(OI)(CI)F" | Out-Null
& (Join-Path $here "labedge-service.exe") install
& (Join-Path $here "labedge-service.exe") start
Write-Host "labedge service installed and started; check with: labedge status --config $data\labedge.toml"
