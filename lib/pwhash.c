/* pwhash.c - password hashes in Dovecot's {SCHEME} form over libxcrypt. */
#include "config.h"

#include <crypt.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "mem.h"
#include "pwhash.h"

#define C64_CHARS "[./0-9A-Za-z]"

/* the crypt(3) base-64 alphabet */
static int is_c64(char c)
{
    return c == '.' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
}

/* the standard base-64 alphabet, as argon2 writes it (no padding) */
static int is_b64(char c)
{
    return c == '+' || c == '/' || (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') ||
           (c >= 'a' && c <= 'z');
}

static size_t span_c64(const char *s)
{
    size_t n = 0;
    while (is_c64(s[n]))
        n++;
    return n;
}

static size_t span_b64(const char *s)
{
    size_t n = 0;
    while (is_b64(s[n]))
        n++;
    return n;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }

/* --- the forms ------------------------------------------------------------------ */

/* $2a$|$2b$|$2y$ NN $ 22 salt + 31 hash characters */
static int check_bcrypt(const char *s, const char **why)
{
    const char *rest;
    size_t len;
    int cost;

    if (strncmp(s, "$2a$", 4) && strncmp(s, "$2b$", 4) && strncmp(s, "$2y$", 4)) {
        *why = "bcrypt hash must start with $2a$, $2b$ or $2y$";
        return 0;
    }
    if (!is_digit(s[4]) || !is_digit(s[5]) || s[6] != '$') {
        *why = "bcrypt cost must be two digits followed by $";
        return 0;
    }
    cost = (s[4] - '0') * 10 + (s[5] - '0');
    if (cost < PW_BCRYPT_COST_MIN || cost > PW_BCRYPT_COST_MAX) {
        *why = "bcrypt cost must be 04 to 31";
        return 0;
    }
    rest = s + 7;
    len = strlen(rest);
    if (span_c64(rest) != len) {
        *why = "bcrypt salt and hash have a character outside " C64_CHARS;
        return 0;
    }
    if (len != 53) {
        *why = "bcrypt salt and hash must be 53 characters (22 + 31)";
        return 0;
    }
    return 1;
}

/* SHA-crypt: $N$ [rounds=R$] salt(1..16) $ hash */
struct sha_form {
    const char *tag;
    size_t hash_len;
    const char *m_rounds_num, *m_rounds_zero, *m_rounds_range, *m_no_dollar, *m_salt_empty,
        *m_salt_long, *m_salt_char, *m_hash_char, *m_hash_len;
};

#define SHA_FORM(TAG, NAME, LEN, LENS)                                                   \
    {                                                                                    \
        TAG, LEN, NAME " rounds= must be a number followed by $",                        \
            NAME " rounds= must not have a leading zero",                                \
            NAME " rounds= must be 1000 to 999999999",                                   \
            NAME " hash has no $ between its salt and its hash",                         \
            NAME " salt is empty", NAME " salt is longer than 16 characters",            \
            NAME " salt has a character outside " C64_CHARS,                             \
            NAME " hash part has a character outside " C64_CHARS,                        \
            NAME " hash part must be " LENS " characters"                                \
    }

static const struct sha_form sha512_form = SHA_FORM("$6$", "SHA-512 crypt", 86, "86");
static const struct sha_form sha256_form = SHA_FORM("$5$", "SHA-256 crypt", 43, "43");

static int check_sha(const struct sha_form *f, const char *s, const char **why)
{
    const char *p = s + strlen(f->tag), *h;
    size_t n;

    if (!strncmp(p, "rounds=", 7)) {
        const char *q = p + 7, *d = q;
        unsigned long r = 0;
        while (is_digit(*q) && q - d < 10)
            r = r * 10 + (unsigned long)(*q++ - '0');
        if (q == d || *q != '$') {
            *why = is_digit(*q) ? f->m_rounds_range : f->m_rounds_num;
            return 0;
        }
        if (*d == '0' && q - d > 1) {
            *why = f->m_rounds_zero;
            return 0;
        }
        if (r < 1000 || r > 999999999) {
            *why = f->m_rounds_range;
            return 0;
        }
        p = q + 1;
    }
    n = strcspn(p, "$");
    if (p[n] != '$') {
        *why = f->m_no_dollar;
        return 0;
    }
    if (n == 0) {
        *why = f->m_salt_empty;
        return 0;
    }
    if (n > 16) {
        *why = f->m_salt_long;
        return 0;
    }
    if (span_c64(p) < n) {
        *why = f->m_salt_char;
        return 0;
    }
    h = p + n + 1;
    n = strlen(h);
    if (span_c64(h) != n) {
        *why = f->m_hash_char;
        return 0;
    }
    if (n != f->hash_len) {
        *why = f->m_hash_len;
        return 0;
    }
    return 1;
}

/* yescrypt and gost-yescrypt: $y$ params $ salt $ 43 characters */
struct yes_form {
    const char *tag;
    const char *m_param_empty, *m_param_char, *m_param_end, *m_salt_empty, *m_salt_char,
        *m_salt_end, *m_hash_char, *m_hash_len;
};

#define YES_FORM(TAG, NAME)                                                              \
    {                                                                                    \
        TAG, NAME " parameters are empty",                                               \
            NAME " parameters have a character outside " C64_CHARS,                     \
            NAME " hash has no $ after its parameters", NAME " salt is empty",           \
            NAME " salt has a character outside " C64_CHARS,                             \
            NAME " hash has no $ between its salt and its hash",                         \
            NAME " hash part has a character outside " C64_CHARS,                        \
            NAME " hash part must be 43 characters"                                      \
    }

static const struct yes_form yescrypt_form = YES_FORM("$y$", "yescrypt");
static const struct yes_form gost_form = YES_FORM("$gy$", "gost-yescrypt");

static int check_yes(const struct yes_form *f, const char *s, const char **why)
{
    const char *p = s + strlen(f->tag);
    size_t n = span_c64(p);

    if (p[n] != '$') {
        *why = p[n] == 0 ? f->m_param_end : f->m_param_char;
        return 0;
    }
    if (n == 0) {
        *why = f->m_param_empty;
        return 0;
    }
    p += n + 1;
    n = span_c64(p);
    if (p[n] != '$') {
        *why = p[n] == 0 ? f->m_salt_end : f->m_salt_char;
        return 0;
    }
    if (n == 0) {
        *why = f->m_salt_empty;
        return 0;
    }
    p += n + 1;
    n = strlen(p);
    if (span_c64(p) != n) {
        *why = f->m_hash_char;
        return 0;
    }
    if (n != 43) {
        *why = f->m_hash_len;
        return 0;
    }
    return 1;
}

/* scrypt: $7$ N(1) r(5) p(5) salt $ 43 characters */
static int check_scrypt(const char *s, const char **why)
{
    const char *p = s + 3;
    size_t n = span_c64(p);

    if (p[n] != '$') {
        *why = p[n] == 0 ? "scrypt hash has no $ between its salt and its hash"
                         : "scrypt parameters and salt have a character outside " C64_CHARS;
        return 0;
    }
    if (n < 12) {
        *why = "scrypt parameters and salt are too short (11 characters of parameters, then a salt)";
        return 0;
    }
    p += n + 1;
    n = strlen(p);
    if (span_c64(p) != n) {
        *why = "scrypt hash part has a character outside " C64_CHARS;
        return 0;
    }
    if (n != 43) {
        *why = "scrypt hash part must be 43 characters";
        return 0;
    }
    return 1;
}

/* a decimal number, no leading zero, at most 2^32 - 1; advances *pp */
static int argon_num(const char **pp, unsigned long long *v)
{
    const char *p = *pp, *d = p;
    unsigned long long r = 0;

    while (is_digit(*p) && p - d < 11)
        r = r * 10 + (unsigned long long)(*p++ - '0');
    if (p == d || (*d == '0' && p - d > 1) || is_digit(*p) || r > 4294967295ULL)
        return 0;
    *pp = p;
    *v = r;
    return 1;
}

/* $argon2id$v=19$m=N,t=N,p=N$salt$hash (base-64 without padding) */
static int check_argon2id(const char *s, const char **why)
{
    const char *p = s;
    unsigned long long m, t, par;
    size_t n;

    if (strncmp(p, "$argon2id$", 10)) {
        *why = "{ARGON2ID} hash must start with $argon2id$";
        return 0;
    }
    p += 10;
    if (strncmp(p, "v=19$", 5)) {
        *why = "argon2id version must be v=19";
        return 0;
    }
    p += 5;
    if (strncmp(p, "m=", 2) || (p += 2, !argon_num(&p, &m)) || strncmp(p, ",t=", 3) ||
        (p += 3, !argon_num(&p, &t)) || strncmp(p, ",p=", 3) || (p += 3, !argon_num(&p, &par)) ||
        *p != '$') {
        *why = "argon2id parameters must be m=N,t=N,p=N$ (numbers without leading zeros)";
        return 0;
    }
    p++;
    if (t < 1) {
        *why = "argon2id t= must be at least 1";
        return 0;
    }
    if (par < 1 || par > 16777215) {
        *why = "argon2id p= must be 1 to 16777215";
        return 0;
    }
    if (m < 8 * par) {
        *why = "argon2id m= must be at least 8 times p=";
        return 0;
    }
    n = strcspn(p, "$");
    if (p[n] != '$') {
        *why = "argon2id hash has no $ between its salt and its hash";
        return 0;
    }
    if (span_b64(p) < n) {
        *why = "argon2id salt must be base64 without padding";
        return 0;
    }
    if (n < 11 || n % 4 == 1) {
        *why = n < 11 ? "argon2id salt must be at least 8 bytes (11 base64 characters)"
                      : "argon2id salt has an impossible base64 length";
        return 0;
    }
    p += n + 1;
    n = strlen(p);
    if (span_b64(p) != n) {
        *why = "argon2id hash part must be base64 without padding";
        return 0;
    }
    if (n < 22 || n % 4 == 1) {
        *why = n < 22 ? "argon2id hash part must be at least 16 bytes (22 base64 characters)"
                      : "argon2id hash part has an impossible base64 length";
        return 0;
    }
    return 1;
}

static int check_crypt(const char *s, const char **why)
{
    if (!strncmp(s, "$y$", 3))
        return check_yes(&yescrypt_form, s, why);
    if (!strncmp(s, "$gy$", 4))
        return check_yes(&gost_form, s, why);
    if (!strncmp(s, "$2", 2))
        return check_bcrypt(s, why);
    if (!strncmp(s, "$6$", 3))
        return check_sha(&sha512_form, s, why);
    if (!strncmp(s, "$5$", 3))
        return check_sha(&sha256_form, s, why);
    if (!strncmp(s, "$7$", 3))
        return check_scrypt(s, why);
    if (!strncmp(s, "$1$", 3) || !strncmp(s, "$md5", 4))
        *why = "MD5 crypt is too weak; use $y$, $2b$ or $6$";
    else if (*s != '$')
        *why = "{CRYPT} hash must start with $ (DES crypt is too weak)";
    else
        *why = "{CRYPT} hash must be $y$, $gy$, $2a$, $2b$, $2y$, $5$, $6$ or $7$";
    return 0;
}

static int check_blf(const char *s, const char **why)
{
    if (strncmp(s, "$2", 2)) {
        *why = "{BLF-CRYPT} hash must start with $2a$, $2b$ or $2y$";
        return 0;
    }
    return check_bcrypt(s, why);
}

static int check_sha512(const char *s, const char **why)
{
    if (strncmp(s, "$6$", 3)) {
        *why = "{SHA512-CRYPT} hash must start with $6$";
        return 0;
    }
    return check_sha(&sha512_form, s, why);
}

static int check_sha256(const char *s, const char **why)
{
    if (strncmp(s, "$5$", 3)) {
        *why = "{SHA256-CRYPT} hash must start with $5$";
        return 0;
    }
    return check_sha(&sha256_form, s, why);
}

static const struct scheme {
    const char *prefix;
    int (*check)(const char *body, const char **why);
    int crypt;                  /* the body is a crypt(3) string */
} schemes[] = {
    { "{CRYPT}", check_crypt, 1 },
    { "{BLF-CRYPT}", check_blf, 1 },
    { "{SHA512-CRYPT}", check_sha512, 1 },
    { "{SHA256-CRYPT}", check_sha256, 1 },
    { "{ARGON2ID}", check_argon2id, 0 },
};
#define NSCHEMES (sizeof(schemes) / sizeof(schemes[0]))

/* the scheme whose prefix hash starts with, after the generic checks */
static const struct scheme *find_scheme(const char *hash, const char **why)
{
    const char *close;
    size_t plen;

    if (*hash == 0) {
        *why = "password hash is empty";
        return NULL;
    }
    for (const unsigned char *p = (const unsigned char *)hash; *p; p++) {
        if (*p <= 0x20 || *p == 0x7f) {
            *why = "password hash has a space or a control character";
            return NULL;
        }
        if (*p >= 0x80) {
            *why = "password hash has a non-ASCII character";
            return NULL;
        }
    }
    if (strlen(hash) > PW_HASH_MAX) {
        *why = "password hash is longer than 512 characters";
        return NULL;
    }
    if (*hash != '{') {
        *why = "password hash has no {SCHEME} prefix, such as {CRYPT}";
        return NULL;
    }
    close = strchr(hash, '}');
    if (close == NULL) {
        *why = "password hash has an unterminated {SCHEME} prefix";
        return NULL;
    }
    plen = (size_t)(close - hash) + 1;
    for (size_t i = 0; i < NSCHEMES; i++)
        if (strlen(schemes[i].prefix) == plen && !memcmp(hash, schemes[i].prefix, plen))
            return &schemes[i];
    for (size_t i = 0; i < NSCHEMES; i++)
        if (strlen(schemes[i].prefix) == plen && !strncasecmp(hash, schemes[i].prefix, plen)) {
            *why = "password hash scheme names are upper case, such as {CRYPT}";
            return NULL;
        }
    if (!strncasecmp(hash, "{PLAIN", 6) || !strncasecmp(hash, "{CLEAR", 6))
        *why = "plaintext password schemes are refused; give a hash";
    else
        *why = "unknown password hash scheme; use {CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT}, "
               "{SHA256-CRYPT} or {ARGON2ID}";
    return NULL;
}

int pw_hash_check(const char *hash, const char **why)
{
    const struct scheme *sc = find_scheme(hash, why);
    if (sc == NULL)
        return 0;
    return sc->check(hash + strlen(sc->prefix), why);
}

/* --- making and verifying -------------------------------------------------------- */

int pw_hash_make(const char *scheme, int bcrypt_cost, const char *plain, struct buf *out,
                 const char **why)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    const char *tag, *prefix;
    unsigned long count = 0;
    struct crypt_data *data;
    const char *h;
    size_t plen = strlen(plain), mark = out->len;
    int ok;

    if (scheme == NULL || !strcmp(scheme, "yescrypt")) {
        tag = "$y$";            /* count 0: libxcrypt's default cost */
        prefix = "{CRYPT}";
    } else if (!strcmp(scheme, "bcrypt")) {
        if (bcrypt_cost < PW_BCRYPT_COST_MIN || bcrypt_cost > PW_BCRYPT_COST_MAX) {
            *why = "bcrypt cost must be 4 to 31";
            return -1;
        }
        if (plen > PW_BCRYPT_MAX_PLAIN) {
            *why = "bcrypt uses only the first 72 bytes of a password; use yescrypt or a shorter password";
            return -1;
        }
        tag = "$2b$";
        count = (unsigned long)bcrypt_cost;
        prefix = "{BLF-CRYPT}";
    } else if (!strcmp(scheme, "sha512")) {
        tag = "$6$";            /* count 0: 5000 rounds, what Dovecot itself writes */
        prefix = "{SHA512-CRYPT}";
    } else {
        *why = "unknown password scheme; use yescrypt, bcrypt or sha512";
        return -1;
    }
    if (plen == 0) {
        *why = "empty password refused";
        return -1;
    }
    if (plen >= CRYPT_MAX_PASSPHRASE_SIZE) {
        *why = "password is longer than 511 bytes";
        return -1;
    }
    /* NULL random bytes: libxcrypt reads them from the kernel */
    if (crypt_gensalt_rn(tag, count, NULL, 0, setting, (int)sizeof(setting)) == NULL) {
        *why = "cannot make a salt (no random source?)";
        return -1;
    }
    data = xcalloc(1, sizeof(*data));
    h = crypt_rn(plain, setting, data, (int)sizeof(*data));
    ok = h != NULL && h[0] != '*';
    if (ok) {
        buf_adds(out, prefix);
        buf_adds(out, h);
    }
    explicit_bzero(data, sizeof(*data));
    free(data);
    if (!ok) {
        *why = "crypt failed to hash the password";
        return -1;
    }
    /* what we send must pass what we would accept */
    if (!pw_hash_check(out->data + mark, why)) {
        buf_truncate(out, mark);
        return -1;
    }
    return 0;
}

int pw_hash_verify(const char *hash, const char *plain)
{
    const char *why, *body, *h;
    const struct scheme *sc = find_scheme(hash, &why);
    struct crypt_data *data;
    unsigned char diff = 0;
    size_t len;

    if (sc == NULL || !sc->crypt || !pw_hash_check(hash, &why))
        return 0;
    body = hash + strlen(sc->prefix);
    len = strlen(body);
    data = xcalloc(1, sizeof(*data));
    h = crypt_rn(plain, body, data, (int)sizeof(*data));
    if (h == NULL || h[0] == '*' || strlen(h) != len) {
        diff = 1;
    } else {
        for (size_t i = 0; i < len; i++)   /* no early exit: constant time */
            diff |= (unsigned char)(h[i] ^ body[i]);
    }
    explicit_bzero(data, sizeof(*data));
    free(data);
    return diff == 0;
}
