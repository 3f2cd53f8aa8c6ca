#!/bin/bash
# mkcorpus.sh [BUILD_DIR] - (re)write the seed corpora under corpus/.
# Needs BUILD_DIR/mkseed_snap from build.sh for the snapshot seed.
# Stream targets (tcpt, smap): byte 0 flags (bit 7: directory not loaded,
# bits 0-1: tcp_table map 0 domains 1 mailboxes 2 aliases 3 senders),
# bytes 1-2 the split point of the stream, then the stream (see stream.h).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/out}
c=$here/corpus
mkdir -p "$c/tcpt" "$c/smap" "$c/snap" "$c/cfg" "$c/addr" "$c/codec"

seed() { # target name printf-format...
    local t=$1 n=$2
    shift 2
    mkdir -p "$c/$t"
    # shellcheck disable=SC2059
    printf "$@" > "$c/$t/$n"
}
ns() { printf '%d:%s,' "${#1}" "$1"; }   # ASCII only

# tcp_table
seed tcpt domains '\000\000\005get example.com\nget M%%C3%%BCnchen.de\nget off.example\nget EXAMPLE.COM.\n'
seed tcpt mailboxes '\001\000\020get Alice@Example.COM\nget alice+tag@example.com\nget nobody%%40nowhere.org\r\nget hans@M%%C3%%9CNCHEN.de\n'
seed tcpt aliases '\002\000\007get info%%2Bx@example.com\nget y+z@m%%C3%%BCnchen.de\nget odd+q@example.com\nget team@example.com\nget nobody+x@example.com\n'
seed tcpt senders '\003\000\003get boss@example.com\nget carol-alt@example.com\nget ghost@example.com\nget x@m%%C3%%BCnchen.de\n'
seed tcpt edge '\002\000\040get edge4096@example.com\nget edge4097@example.com\nget edge4096+x@example.com\n'
seed tcpt bad '\000\000\002fetch x\nget a b\nget %%zz\nget \nput a b\nget\nget %%4\nget a%%00b@example.com\n'
seed tcpt notloaded '\201\000\000get alice@example.com\nget example.com\n'
seed tcpt partial '\001\000\010get alice@example.com\nget alice@exa'
{ printf '\000\100\000get '; head -c 16400 /dev/zero | tr '\0' x; } > "$c/tcpt/toolong"

# socketmap
{ printf '\000\000\005'; ns 'domains example.com'; ns 'domains xn--mnchen-3ya.de'; ns 'mailboxes Alice@Example.COM'; ns 'mailboxes carol@example.com'; } > "$c/smap/lookups"
{ printf '\000\000\014'; ns 'aliases info+x@example.com'; ns 'aliases @example.com'; ns 'senders boss@example.com'; ns 'senders alice+x@example.com'; } > "$c/smap/pipelined"
{ printf '\000\000\003'; ns 'aliases huge@example.com'; ns 'aliases huge1@example.com'; ns 'aliases huge+x@example.com'; } > "$c/smap/edge"
{ printf '\000\000\001'; ns 'nomap x'; ns 'domains'; ns ' example.com'; ns 'domains '; printf '3:abc;'; } > "$c/smap/bad"
seed smap toolong '\000\000\002100001:domains x'
seed smap notloaded '\200\000\000%s' "$(ns 'domains example.com')"
seed smap partial '\000\000\011%s25:mailboxes alice@exa' "$(ns 'mailboxes bob@example.com')"
seed smap leadingzero '\000\000\000019:domains example.com,0:,'

# snapshot
"$out/mkseed_snap" > "$c/snap/fixture.snap"
seed snap empty 'mailroster-snapshot 1 0\nend 0\n'
seed snap cut 'mailroster-snapshot 1 7\nD 1 1 0 0 0 0 3600 =example.com -\n'
seed snap dupid 'mailroster-snapshot 1 7\nD 1 1 0 0 0 0 3600 =example.com -\nD 1 1 0 0 0 0 60 =example.org -\nend 2\n'
seed snap dupkey 'mailroster-snapshot 1 9\nA 1 1 1 =a@example.com =b@example.com\nA 2 1 0 =a@example.com =c@example.com\nS 3 4 =a@example.com\nS 5 6 =a@example.com\nend 4\n'
seed snap version 'mailroster-snapshot 2 1\nend 0\n'
seed snap version-new 'mailroster-snapshot 6 1\nend 0\n'
seed snap identity 'mailroster-snapshot 5 42 0b6f3c1e-9a2d-4f7b-8c5e-1d2a3b4c5d6e\nD 1 1 0 0 0 0 3600 =example.com -\nM 10 1 1 1 1 31 -1 -1 -1 -1 -1 -1 =a@example.com - - - =example.com/10/ - - 0 -\nend 2\n'

# configuration
seed cfg full '# mailroster.conf\n\ndatabase = host=/run/postgresql\n    dbname=mailroster user=mailroster\nsnapshot_file = /var/lib/mailroster/snapshot\nsnapshot_interval = 5m\npoll_interval=10s\nstartup_timeout = 0\nrecipient_delimiter = +-\ntcp_table_domains = 127.0.0.1:10100\ntcp_table_mailboxes = 127.0.0.1:10101\ntcp_table_aliases = 127.0.0.1:10102\ntcp_table_senders = 127.0.0.1:10103\nsocketmap_listen = unix:/run/mailroster/socketmap,\n\tinet:127.0.0.1:10104\n# a comment between\n  , inet:[::1]:10104\nsocketmap_mode = 0660\nmax_connections = 1000000\nidle_timeout = 1d\ndebug = yes\n'
seed cfg crlf 'debug = true\r\nmax_connections = 10\r\n\r\nidle_timeout = 2h\r\n'
seed cfg errors 'poll_interval = 61m\n'
seed cfg continuation '  indented = 1\n'
seed cfg noeq 'debug\n'
seed cfg negative 'startup_timeout = -5s\nsocketmap_mode = 0999\n'
seed cfg nonl 'database = dbname=x'

# addresses and domains
seed addr plain 'Alice@Example.COM'
seed addr idn 'hans+tag@M\303\234NCHEN.de'
seed addr idn_domain 'm\303\274nchen.de'
seed addr catchall '@example.com'
seed addr dots 'a..b.@example.com'
seed addr twoat 'a@b@xn--mnchen-3ya.de'
seed addr ignorable 'x@ex\342\200\213ample.com'
seed addr fullwidth_dot 'example\357\274\216com'
seed addr bad_label 'x@-a.b-.c..d'
seed addr local_delim 'a+b-c=d'
seed addr local64 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa@example.com'

# codecs
seed codec quoted 'a%%20b%%25c%%0d%%0A'
seed codec badescape '%%zz%%4'
seed codec netstring '5:hello,'
seed codec nested '12:5:hello,0:,,'
seed codec binary '\000\001\377 %%\n'

# the connection layer (fuzz_srv): byte 0 bits 0-1 the protocol (0
# tcp_table, 1 socketmap, 2 auth), bits 2-3 the tcp_table map; bytes 1-2
# seed the cut points. The stream seeds above, loaded directory only.
mkdir -p "$c/srv"
for f in "$c"/tcpt/* "$c"/smap/* "$c"/auth/*; do
    t=$(basename "$(dirname "$f")")
    b0=$(od -An -tu1 -N1 "$f" | tr -d ' ')
    [ $((b0 & 128)) -eq 0 ] || continue
    case $t in
    tcpt) p=$(( (b0 & 3) << 2 )) ;;
    smap) p=1 ;;
    auth) p=2 ;;
    esac
    { printf "\\$(printf '%03o' "$p")\\123\\045"; tail -c +4 "$f"; } > "$c/srv/${t}_$(basename "$f")"
done
# tcp_table with requests answered later ("wait", see fuzz_srv.c), lines
# sent behind them and a wait at the very end
seed srv tcpt_wait '\000\123\045get info%%2Bx@example.com\nwait\nget y+z@example.com\nget nobody@example.com\nwait\nwait\nget info@example.com\nwait\n'
seed srv auth_list '\002\001\007VERSION\t1\t0\n1\tLIST\n2\tPASS\talice@example.com\timap\n3\tLIST\n4\tUSER\tbob@example.com\tlmtp\n'

# the admin socket's commands (fuzz_admin): byte 0 the caller (0 admin, 1
# domain admin of example.com, 2 read-only, 3 not allowed), then request
# lines. The lines tests/integration/admin_test.sh sends (one seed per adm
# call; $HASH and friends become a SHA512-CRYPT hash), and the options
# features_test.sh sets through the CLI.
rm -rf "$c/admin"
mkdir -p "$c/admin"
python3 - "$here/../integration/admin_test.sh" "$c/admin" <<'PY'
import re, subprocess, sys
src, dst = sys.argv[1], sys.argv[2]
hash_ = "{SHA512-CRYPT}$6$HrSS1lpbFHkCEXOm$Mwd8mXmNlZsoS0IFazENX6d4ADqGqYl0EdqHTV.pRn3yN8v3RZaaB1RHp/7pE0ZdfqWzUYdjbjRqv4lyTBmcO."
arg = re.compile(r"'([^']*)'|\"((?:[^\"\\]|\\.)*)\"")
n = 0
for line in open(src, encoding="utf-8"):
    m = re.search(r"\badm(?:_as [a-z]+)? ((?:(?:'[^']*'|\"(?:[^\"\\]|\\.)*\") ?)+)", line)
    if not m:
        continue
    words = []
    for a in arg.finditer(m.group(1)):
        if a.group(1) is not None:
            words.append(a.group(1).encode())
            continue
        w = a.group(2)
        # $(printf '...'): the bytes it prints; $VAR: a hash or a file name
        w = re.sub(r"\$\(printf '([^']*)'\)",
                   lambda p: subprocess.run(["printf", p.group(1)], capture_output=True).stdout.decode("latin-1"), w)
        w = re.sub(r"\$\{?(M?HASH)\}?", hash_, w)
        w = re.sub(r"\$\{?STACK_DIR\}?", "/tmp/stack", w)
        if "$" in w or "\\" in w.replace('\\"', ""):
            words = None
            break
        words.append(w.replace('\\"', '"').encode("latin-1"))
    if not words:
        continue
    role = b"\x02" if "adm_as" in m.group(0) else b"\x00"
    n += 1
    with open("%s/test%03d" % (dst, n), "wb") as f:
        f.write(role + b"".join(w + b"\n" for w in words))
PY
seed admin features '\000user set fwd@example.com forward=a@example.com,b@example.org keep_copy=yes\nuser set fwd@example.com forward=\nuser set dora@example.test display_name=Dora\\ Explorer "metadata={\\"team\\":\\"ops\\",\\"n\\":[1,2]}"\nuser set x@example.com display_name=\n'
seed admin options '\000user add new@example.com quota=2G quota_messages=1000 may_send=no may_receive=yes services=imap,lmtp send_limit_messages=5 send_limit_recipients=50 home=/srv/mail/x mail=maildir:~/M uid=5000 gid=5000 path_override=yes\n'
seed admin limits '\000limit set user alice@example.com window=1h messages=10 recipients=unlimited\nlimit set domain example.com unlimited\nlimit set global window=1d messages=1000\nlimit remove user alice@example.com window=60m\nlimit show alice@example.com\nlimit log alice@example.com\nlimit reset alice@example.com\n'
seed admin misc '\000alias add info@example.com alice@example.com bob@example.com may_send=no\nsender add boss@example.com alice@example.com\ntransport add .example.net relay:[10.0.0.5]:8025\ntransport set example.org enabled=no\nmaster add gw password=$6$x domains=example.com\nshare add alice@example.com bob@example.com\nsieve set alice@example.com "require \\"fileinto\\";"\nsieve show alice@example.com\nexport example.com\nstats\nstatus\nhelp user add\n'
seed admin import '\000import begin\nimport line {"kind":"domain","name":"x.example"}\nimport line {"kind":"nonsense"}\nimport commit --dry-run\nimport begin\nimport abort\nimport line {}\n'
seed admin importdata '\000import begin\nimport data 41\n{"kind":"domain","name":"x.example"}\n\n \r\nimport data 3\n{}\nimport data 5\nab\000c\nimport begin\nimport data 1\nximport commit\nimport data x\nimport line {}\n'
seed admin domainadmin '\001user add a@example.com quota=1G\nuser set a@other.example quota=1G\nuser set a@example.com home=/x\nlimit set domain example.com unlimited\nlimit set user a@example.com window=1h messages=3\ndomain remove example.com --force\n'
seed admin readonly '\002user show alice@example.com\nuser add a@example.com\nlimit show alice@example.com\nsieve show alice@example.com\ndomain list\n'
seed admin stranger '\003domain list\nuser add a@example.com\n'
seed admin states '\004user suspend alice@example.com reason=spam\nuser unsuspend alice@example.com\nuser set alice@example.com may_send=yes\nuser disable alice@example.com reason=unpaid\nuser enable alice@example.com\nuser remove alice@example.com --purge reason=left\nuser passwd alice@example.com {SHA512-CRYPT}$6$abc$def\ndomain disable example.com reason=unpaid\ndomain enable example.com\ndomain remove example.com --force\n'
seed admin committed '\004domain add new.example quota=1G\nuser add a@new.example\nalias ensure a+b@new.example a@new.example\nsender ensure @new.example a@new.example\nsender remove @new.example a@new.example\nalias remove a+b@new.example\ntransport ensure new.example smtp:[10.0.0.1]\ntransport remove new.example\nmaster ensure gw password={ARGON2ID}$argon2id$x\nmaster remove gw\nsieve remove a@new.example\nshare remove a@new.example b@new.example\n'
seed admin domaincommit '\005user add a@example.com quota=1G send_limit_messages=5\nuser ensure b@example.com\nuser list example.com\nalias list example.com\nsender list a@example.com\nshare list example.com\nexport example.com\n'
