# Puts WinSW (MIT licence) into the folder build as labedge-service.exe, with its licence.
# Run after `pyinstaller pyinstaller.spec` on the Windows build machine:
#   .\installer\windows\fetch-winsw.ps1 -Dist dist\labedge
# The download is checked against the SHA-256 pinned in winsw.sha256 beside this script; the
# script refuses to ship an executable whose hash is not pinned there.
param([string]$Dist = "dist\labedge", [string]$Version = "v2.12.0")
$ErrorActionPreference = "Stop"
$here = Split-Path -Parent $MyInvocation.MyCommand.Path
$pin = (Get-Content (Join-Path $here "winsw.sha256") | Where-Object { $_ -match "^[0-9a-fA-F]{64}\s" } |
    Select-Object -First 1)
if (-not $pin) { throw "winsw.sha256 pins no hash yet: verify WinSW-NET461.exe $Version from the release page, then add '<sha256>  WinSW-NET461.exe $Version'" }
$want = $pin.Split()[0].ToLower()
$base = "https://github.com/winsw/winsw/releases/download/$Version"
$exe = Join-Path $Dist "labedge-service.exe"
Invoke-WebRequest "$base/WinSW-NET461.exe" -OutFile $exe
$got = (Get-FileHash -Algorithm SHA256 $exe).Hash.ToLower()
if ($got -ne $want) { Remove-Item $exe; throw "WinSW-NET461.exe has SHA-256 $got, expected $($want): not shipped" }
Invoke-WebRequest "https://raw.githubusercontent.com/winsw/winsw/$Version/LICENSE.txt" -OutFile (Join-Path $Dist "WinSW-LICENSE.txt")
Copy-Item (Join-Path $here "install-service.ps1") $Dist
Write-Host "WinSW $Version shipped as $exe (licence in WinSW-LICENSE.txt)"
