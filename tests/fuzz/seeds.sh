#!/usr/bin/env bash
# Regenerates the committed seed corpora of fuzz_pem and fuzz_verify from fresh throw-away
# certificates (openssl). The seeds are inputs, not trust: nothing else uses these files.
#
#   tests/fuzz/seeds.sh        (writes tests/fuzz/corpus/pem/ and tests/fuzz/corpus/verify/)
#
# A fuzz_verify seed is one flags byte, then a DER certificate: bit 0 re-sign it with the
# harness's CA, bit 1 make it valid now, bits 2-3 the digest (sha256, sha1, sha384, sha512).
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PEM=$REPO/tests/fuzz/corpus/pem
VER=$REPO/tests/fuzz/corpus/verify
w=$(mktemp -d "${TMPDIR:-/tmp}/edge-seeds.XXXXXX")
trap 'rm -rf "$w"' EXIT
mkdir -p "$PEM" "$VER"
cd "$w"

ec() { openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null; }
ec ca.key
openssl req -x509 -key ca.key -days 30 -out ca.crt -subj "/CN=seed CA" \
	-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign 2>/dev/null
# leaf NAME EXTENSIONS [KEYFILE [x509 args]]: NAME.crt signed by the CA.
leaf() {
	local key=${3:-$1.key}
	[ -s "$key" ] || ec "$key"
	openssl req -new -key "$key" -out "$1.csr" -subj "/CN=$1" 2>/dev/null
	openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -days 30 \
		-out "$1.crt" -extfile <(printf '%b\n' "$2") "${@:4}" 2>/dev/null
}
client='basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth'
leaf client "$client"
leaf leafca 'basicConstraints=critical,CA:TRUE\nkeyUsage=critical,digitalSignature,keyCertSign\nextendedKeyUsage=clientAuth'
leaf serveronly 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth'
leaf kucertsign 'basicConstraints=critical,CA:FALSE\nkeyUsage=critical,keyCertSign\nextendedKeyUsage=clientAuth'
leaf noext 'subjectKeyIdentifier=hash'
leaf sans "$client\nsubjectAltName=DNS:a.example.test,URI:spiffe://example.test/a,email:a@example.test"
openssl genrsa -out rsa1024.key 1024 2>/dev/null
openssl genrsa -out rsa2048.key 2048 2>/dev/null
leaf rsa1024 "$client" rsa1024.key
leaf rsa2048 "$client" rsa2048.key
# Serials the harness revokes: 0x65 in the built-in CA's list, 0x66 in the uploaded CA's CRL.
leaf serial65 "$client" client.key -set_serial 0x65
leaf serial66 "$client" client.key -set_serial 0x66

# PEM parsers: good input of every kind, and the malformed uploads of BAD-INPUTS row 25.
cp client.crt "$PEM/cert.pem"
{ echo "Subject: CN=client (explanatory text is allowed)"; cat client.crt; } >"$PEM/cert-with-text.pem"
cat client.crt ca.crt >"$PEM/chain.pem"
cat client.crt client.key >"$PEM/cert-then-key.pem"
cp client.csr "$PEM/csr.pem"
cp client.key "$PEM/key-ec.pem"
cp rsa1024.key "$PEM/key-rsa1024.pem"
openssl x509 -in client.crt -outform DER -out "$PEM/cert.der"
head -n -1 client.crt >"$PEM/missing-end.pem"
sed '2s/^./!/' client.crt >"$PEM/bad-base64.pem"
{ sed -n 1p client.crt; printf 'Proc-Type: 4,ENCRYPTED\n\n'; sed 1d client.crt; } >"$PEM/headers.pem"
: >"$PEM/empty"
printf '[ca]\ndefault_ca=c\n[c]\ndatabase=%s/index\ncrlnumber=%s/crlnum\ndefault_md=sha256\ndefault_crl_days=7\n' \
	"$w" "$w" >crl.cnf
: >index
echo 01 >crlnum
openssl ca -config crl.cnf -gencrl -keyfile ca.key -cert ca.crt -out "$PEM/crl.pem" 2>/dev/null

# The verifier: flags byte + DER.
# shellcheck disable=SC2059 # the flags byte is the format, by design
seed() { { printf "\\x$1"; openssl x509 -in "$2.crt" -outform DER; } >"$VER/$3"; }
seed 03 client client-resigned-valid
seed 00 client client-as-is
seed 03 leafca leaf-ca-true
seed 03 serveronly serverauth-only
seed 03 kucertsign keyusage-without-digitalsignature
seed 03 noext no-extensions
seed 03 sans with-sans
seed 03 rsa1024 rsa-1024
seed 03 rsa2048 rsa-2048
seed 07 client sha1-signature
seed 0b client sha384-signature
seed 01 client resigned-original-dates
seed 03 serial65 revoked-builtin-serial
seed 03 serial66 revoked-by-crl
echo "seeds: $(find "$PEM" -type f | wc -l) in $PEM, $(find "$VER" -type f | wc -l) in $VER"
