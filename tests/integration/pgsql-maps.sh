# shellcheck shell=bash
# The pgsql: map files a sysop would write for the same schema: the
# baseline the tests compare mailrosterd's answers with. Postfix folds keys
# to lowercase for pgsql maps and itself tries user+ext@domain, user@domain
# and @domain; pg_ref does the same, as Postfix's mail_addr_find does.

pg_write_maps() { # DIR USER
    local dir=$1 user=$2 common
    common="hosts = 127.0.0.1:$STACK_PG_PORT
user = $user
dbname = $MR_DB"
    printf '%s\nquery = SELECT name FROM mailroster.domains WHERE name = '"'"'%%s'"'"' AND enabled\n' "$common" >"$dir/pg-domains.cf"
    printf '%s\nquery = SELECT m.maildir FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE m.local_part = '"'"'%%u'"'"' AND d.name = '"'"'%%d'"'"' AND m.enabled AND m.may_receive AND d.enabled\n' "$common" >"$dir/pg-mailboxes.cf"
    printf '%s\nquery = SELECT array_to_string(a.destinations, '"'"','"'"') FROM mailroster.aliases a JOIN mailroster.domains d ON d.id = a.domain_id WHERE a.local_part || '"'"'@'"'"' || d.name = '"'"'%%s'"'"' AND a.enabled AND d.enabled\n' "$common" >"$dir/pg-aliases.cf"
    # the tutorial's email2email map: keeps a catch-all off real mailboxes
    printf '%s\nquery = SELECT m.local_part || '"'"'@'"'"' || d.name FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id WHERE m.local_part || '"'"'@'"'"' || d.name = '"'"'%%s'"'"'\n' "$common" >"$dir/pg-identity.cf"
    printf '%s\nquery = %s\n' "$common" "WITH k AS (SELECT '%s'::text AS a), dom AS (SELECT 1 FROM mailroster.domains WHERE name = '%d' AND enabled) SELECT DISTINCT o FROM (SELECT m.local_part || '@' || d.name AS o FROM mailroster.mailboxes m JOIN mailroster.domains d ON d.id = m.domain_id, k WHERE m.local_part || '@' || d.name = k.a AND m.enabled UNION SELECT m.local_part || '@' || md.name FROM mailroster.aliases a JOIN mailroster.domains ad ON ad.id = a.domain_id CROSS JOIN LATERAL unnest(a.destinations) dest JOIN mailroster.mailboxes m ON true JOIN mailroster.domains md ON md.id = m.domain_id AND m.local_part || '@' || md.name = dest, k WHERE a.local_part || '@' || ad.name = k.a AND a.enabled AND m.enabled UNION SELECT m.local_part || '@' || d.name FROM mailroster.sender_addresses s JOIN mailroster.mailboxes m ON m.id = s.mailbox_id JOIN mailroster.domains d ON d.id = m.domain_id, k WHERE s.address = k.a AND m.enabled) owners WHERE EXISTS (SELECT 1 FROM dom)" >"$dir/pg-senders.cf"
    PG_MAPS_DIR=$dir
}

pgq() { postmap -q "$2" "pgsql:$PG_MAPS_DIR/pg-$1.cf" 2>/dev/null; }

# sort a comma-separated list (owner lists have no defined order)
sort_list() { tr ',' '\n' | sort | paste -sd, -; }

pg_form() { # MAP KEY: one lookup of one key form; "=IDENTITY" for email2email hits
    local v
    if v=$(pgq "$1" "$2"); then echo "$v"; return 0; fi
    if [ "$1" = aliases ] && pgq identity "$2" >/dev/null; then echo "=IDENTITY"; return 0; fi
    return 1
}

pg_emit() { # MAP VALUE FULL_LOCAL EXT
    local map=$1 v=$2 lp=$3 ext=$4 out="" d
    if [ "$v" = "=IDENTITY" ]; then echo "(not found)"; return; fi
    if [ "$map" != aliases ]; then
        if [ "$map" = senders ]; then echo "$v" | sort_list; else echo "$v"; fi
        return
    fi
    IFS=, read -ra dests <<<"$v"
    for d in "${dests[@]}"; do
        case $d in
            @*) d="$lp$d" ;;
            *) [ -n "$ext" ] && d="${d%@*}$ext@${d##*@}" ;;
        esac
        out="${out:+$out,}$d"
    done
    echo "$out"
}

pg_ref() { # MAP KEY
    local map=$1 key=${2,,} v
    if [ "$map" = domains ]; then pgq domains "$key" || echo "(not found)"; return; fi
    local lp=${key%@*} dom=${key##*@} bare="" ext=""
    case $lp in ?*+*) bare="${lp%%+*}@$dom"; ext="+${lp#*+}" ;; esac
    if v=$(pg_form "$map" "$key"); then pg_emit "$map" "$v" "$lp" ""; return; fi
    if [ -n "$bare" ] && v=$(pg_form "$map" "$bare"); then pg_emit "$map" "$v" "$lp" "$ext"; return; fi
    if [ "$map" != mailboxes ] && v=$(pg_form "$map" "@$dom"); then pg_emit "$map" "$v" "$lp" ""; return; fi
    echo "(not found)"
}
