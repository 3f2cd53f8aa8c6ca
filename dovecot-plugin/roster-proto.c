/* roster-proto.c - request encoding and answer parsing for mailrosterd's auth
 * protocol (mailroster-auth(7)). See roster-proto.h. */
#include "roster-proto.h"

#include <string.h>

static const char *const verdict_names[] = {
    [ROSTER_OK] = "OK",           [ROSTER_NOTFOUND] = "NOTFOUND",
    [ROSTER_DISABLED] = "DISABLED", [ROSTER_DENIED] = "DENIED",
    [ROSTER_FAIL] = "FAIL",       [ROSTER_ERROR] = "ERROR",
    [ROSTER_ROW] = "ROW",         [ROSTER_END] = "END",
    [ROSTER_VERSION] = "VERSION",
};
#define NVERDICTS (sizeof(verdict_names) / sizeof(verdict_names[0]))

const char *roster_verdict_name(enum roster_verdict v)
{
    return (unsigned)v < NVERDICTS ? verdict_names[v] : "?";
}

const char *roster_parse_error_str(enum roster_parse_error e)
{
    switch (e) {
    case ROSTER_PARSE_OK: return "ok";
    case ROSTER_PARSE_TOO_LONG: return "answer line too long";
    case ROSTER_PARSE_NUL: return "NUL in answer";
    case ROSTER_PARSE_BAD_ID: return "bad request id";
    case ROSTER_PARSE_BAD_VERDICT: return "unknown answer word";
    case ROSTER_PARSE_BAD_ESCAPE: return "bad escape";
    case ROSTER_PARSE_BAD_FIELD: return "field is not key=value";
    case ROSTER_PARSE_TOO_MANY_FIELDS: return "too many fields";
    case ROSTER_PARSE_BAD_ARITY: return "wrong number of fields";
    }
    return "?";
}

/* ---------------------------------------------------------------- escaping */

long roster_tabescape(char *out, size_t cap, const char *in, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        char e = 0;
        switch (in[i]) {
        case '\001': e = '1'; break;
        case '\t': e = 't'; break;
        case '\n': e = 'n'; break;
        case '\r': e = 'r'; break;
        default: break;
        }
        if (o + (e ? 2 : 1) > cap)
            return -1;
        if (e) {
            out[o++] = '\001';
            out[o++] = e;
        } else {
            out[o++] = in[i];
        }
    }
    return (long)o;
}

long roster_tabunescape(char *s, size_t len)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] != '\001') {
            s[o++] = s[i];
            continue;
        }
        if (++i == len)
            return -1;
        switch (s[i]) {
        case '1': s[o++] = '\001'; break;
        case 't': s[o++] = '\t'; break;
        case 'n': s[o++] = '\n'; break;
        case 'r': s[o++] = '\r'; break;
        default: return -1;
        }
    }
    return (long)o;
}

/* ---------------------------------------------------------------- requests */

static const struct {
    const char *word;
    unsigned int nargs;
} cmds[] = {
    [ROSTER_CMD_PASS] = { "PASS", 2 },
    [ROSTER_CMD_MASTER] = { "MASTER", 3 },
    [ROSTER_CMD_USER] = { "USER", 2 },
    [ROSTER_CMD_LIST] = { "LIST", 0 },
};

/* Append len raw octets at out+*o; -1 when they do not fit below lim. */
static int put_raw(char *out, size_t lim, size_t *o, const char *s, size_t len)
{
    if (len > lim - *o)
        return -1;
    memcpy(out + *o, s, len);
    *o += len;
    return 0;
}

static int put_escaped(char *out, size_t lim, size_t *o, const char *s)
{
    long n = roster_tabescape(out + *o, lim - *o, s, strlen(s));
    if (n < 0)
        return -1;
    *o += (size_t)n;
    return 0;
}

long roster_encode_request(char *out, size_t cap, uint32_t id, enum roster_cmd cmd,
                           const char *const *args, unsigned int nargs)
{
    char num[16];
    size_t o = 0, nlen = 0;

    if ((unsigned)cmd >= sizeof(cmds) / sizeof(cmds[0]) || cmds[cmd].nargs != nargs ||
        id == 0 || cap < 2)
        return -1;
    for (unsigned int i = 0; i < nargs; i++)
        if (args[i] == NULL || args[i][0] == '\0')
            return -1;
    /* room for the LF inside the protocol limit, and for the NUL in out */
    size_t lim = cap - 1 < ROSTER_REQUEST_MAX ? cap - 1 : ROSTER_REQUEST_MAX;
    lim -= 1;

    /* the id in decimal, without leading zeros */
    char rev[16];
    for (uint32_t v = id; v != 0; v /= 10)
        rev[nlen++] = (char)('0' + v % 10);
    for (size_t i = 0; i < nlen; i++)
        num[i] = rev[nlen - 1 - i];

    if (put_raw(out, lim, &o, num, nlen) < 0 || put_raw(out, lim, &o, "\t", 1) < 0 ||
        put_raw(out, lim, &o, cmds[cmd].word, strlen(cmds[cmd].word)) < 0)
        return -1;
    for (unsigned int i = 0; i < nargs; i++)
        if (put_raw(out, lim, &o, "\t", 1) < 0 || put_escaped(out, lim, &o, args[i]) < 0)
            return -1;
    out[o++] = '\n';
    out[o] = '\0';
    return (long)o;
}

/* ---------------------------------------------------------------- answers */

/* A decimal id of 1..4294967295 without leading zero, or exactly "0". */
static int parse_id(const char *s, uint32_t *id)
{
    uint64_t v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 10 || (s[0] == '0' && n > 1))
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    if (v > UINT32_MAX)
        return -1;
    *id = (uint32_t)v;
    return 0;
}

static int parse_small_uint(const char *s, unsigned int *v)
{
    uint32_t id;
    if (parse_id(s, &id) < 0 || id > 65535)
        return -1;
    *v = id;
    return 0;
}

static int find_verdict(const char *w, enum roster_verdict *v)
{
    for (size_t i = 0; i < NVERDICTS; i++)
        if (i != ROSTER_VERSION && strcmp(verdict_names[i], w) == 0) {
            *v = (enum roster_verdict)i;
            return 0;
        }
    return -1;
}

/* Split line at TABs into f[], unescaping each part; NUL-terminates each. */
static enum roster_parse_error split_fields(char *line, size_t len, char **f,
                                            unsigned int max, unsigned int *nf)
{
    unsigned int n = 0;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && line[i] != '\t')
            continue;
        if (n == max)
            return ROSTER_PARSE_TOO_MANY_FIELDS;
        long m = roster_tabunescape(line + start, i - start);
        if (m < 0)
            return ROSTER_PARSE_BAD_ESCAPE;
        line[start + (size_t)m] = '\0'; /* m <= i - start: inside the line or at its end */
        f[n++] = line + start;
        start = i + 1;
    }
    *nf = n;
    return ROSTER_PARSE_OK;
}

static enum roster_parse_error parse_version(char **f, unsigned int nf, struct roster_answer *ans)
{
    if (nf != 3)
        return ROSTER_PARSE_BAD_ARITY;
    if (parse_small_uint(f[1], &ans->version_major) < 0 ||
        parse_small_uint(f[2], &ans->version_minor) < 0)
        return ROSTER_PARSE_BAD_FIELD;
    ans->verdict = ROSTER_VERSION;
    return ROSTER_PARSE_OK;
}

static enum roster_parse_error parse_kv(char **f, unsigned int nf, struct roster_answer *ans)
{
    for (unsigned int i = 2; i < nf; i++) {
        char *eq = strchr(f[i], '=');
        if (eq == NULL || eq == f[i])
            return ROSTER_PARSE_BAD_FIELD;
        *eq = '\0';
        ans->fields[ans->nfields].key = f[i];
        ans->fields[ans->nfields].value = eq + 1;
        ans->nfields++;
    }
    return ROSTER_PARSE_OK;
}

enum roster_parse_error roster_parse_answer(char *line, size_t len, struct roster_answer *ans)
{
    /* id, verdict and up to ROSTER_FIELDS_MAX fields; one more to detect excess */
    char *f[ROSTER_FIELDS_MAX + 3];
    unsigned int nf;
    enum roster_parse_error e;

    memset(ans, 0, sizeof(*ans) - sizeof(ans->fields));
    if (len > ROSTER_LINE_MAX)
        return ROSTER_PARSE_TOO_LONG;
    if (memchr(line, '\0', len) != NULL)
        return ROSTER_PARSE_NUL;
    e = split_fields(line, len, f, ROSTER_FIELDS_MAX + 3, &nf);
    if (e != ROSTER_PARSE_OK)
        return e;
    if (strcmp(f[0], "VERSION") == 0)
        return parse_version(f, nf, ans);
    if (parse_id(f[0], &ans->id) < 0)
        return ROSTER_PARSE_BAD_ID;
    if (nf < 2 || find_verdict(f[1], &ans->verdict) < 0)
        return ROSTER_PARSE_BAD_VERDICT;
    if (nf - 2 > ROSTER_FIELDS_MAX)
        return ROSTER_PARSE_TOO_MANY_FIELDS;
    /* id 0 is how the daemon answers a request it could not read */
    if (ans->id == 0 && ans->verdict != ROSTER_ERROR)
        return ROSTER_PARSE_BAD_ID;
    switch (ans->verdict) {
    case ROSTER_ROW:
        if (nf != 3 || f[2][0] == '\0')
            return ROSTER_PARSE_BAD_ARITY;
        ans->row_user = f[2];
        return ROSTER_PARSE_OK;
    case ROSTER_END:
        return nf == 2 ? ROSTER_PARSE_OK : ROSTER_PARSE_BAD_ARITY;
    default:
        return parse_kv(f, nf, ans);
    }
}

const char *roster_answer_field(const struct roster_answer *ans, const char *key)
{
    for (unsigned int i = 0; i < ans->nfields; i++)
        if (strcmp(ans->fields[i].key, key) == 0)
            return ans->fields[i].value;
    return NULL;
}
