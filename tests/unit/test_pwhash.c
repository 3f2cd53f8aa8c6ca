/* test_pwhash.c - password hashes: made, checked, verified; malformed ones
 * refused with the message that names the wrong part. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pwhash.h"
#include "tests.h"

/* runs of crypt base-64 characters of a given length */
#define C10 "abcdefghij"
#define C42 C10 C10 C10 C10 "kl"
#define C43 C10 C10 C10 C10 "klm"
#define C52 C43 "ABCDEFGHI"
#define C53 C43 C10
#define C54 C53 "x"
#define C85 C43 C42
#define C86 C43 C43

#define ARGON_SALT "c29tZXNhbHQ"
#define ARGON_HASH "CTFhFdXPJO1aFaMaO6Mm5c8y7cJHAph8ArZWb2GRPPc"
#define ARGON(params) "{ARGON2ID}$argon2id$v=19$" params "$" ARGON_SALT "$" ARGON_HASH

#define SHA512_HELLO "$6$saltstring$svn8UoSVapNtMuq1ukKS4tPQd8iKwSMHWjl/O817G3uBnIFNjnQJuesI68u4OTLiBFdcbYEdFCoEOfaS35inz1"
#define SHA256_HELLO "$5$saltstring$5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
#define BCRYPT_UU "$2a$05$CCCCCCCCCCCCCCCCCCCCC.E5YPO9kmyuRGyh0XouQYb4YMJKvyOeW"

/* --- made here: every scheme round-trips ----------------------------------------- */

static const struct {
    const char *scheme;
    int cost;
    const char *starts;
} made[] = {
    { "yescrypt", 0, "{CRYPT}$y$j9T$" },
    { NULL, 0, "{CRYPT}$y$" },
    { "bcrypt", 5, "{BLF-CRYPT}$2b$05$" },
    { "sha512", 0, "{SHA512-CRYPT}$6$" },
};

START_TEST(make_check_verify)
{
    struct buf h, h2;
    const char *why = NULL;
    const char *plain = "correct horse battery staple \xc3\xa4\xc3\xb6";

    buf_init(&h);
    buf_init(&h2);
    ck_assert_int_eq(pw_hash_make(made[_i].scheme, made[_i].cost, plain, &h, &why), 0);
    ck_assert_msg(!strncmp(h.data, made[_i].starts, strlen(made[_i].starts)), "%s", h.data);
    ck_assert_ptr_null(strstr(h.data, "rounds="));  /* libxcrypt's default for $6$ */
    ck_assert_msg(pw_hash_check(h.data, &why), "%s: %s", h.data, why);
    ck_assert_int_eq(pw_hash_verify(h.data, plain), 1);
    ck_assert_int_eq(pw_hash_verify(h.data, "correct horse battery staple \xc3\xa4\xc3\xb5"), 0);
    ck_assert_int_eq(pw_hash_verify(h.data, "correct horse battery staple"), 0);
    ck_assert_int_eq(pw_hash_verify(h.data, ""), 0);
    /* a fresh salt every time */
    ck_assert_int_eq(pw_hash_make(made[_i].scheme, made[_i].cost, plain, &h2, &why), 0);
    ck_assert_str_ne(h.data, h2.data);
    ck_assert_int_eq(pw_hash_verify(h2.data, plain), 1);
    buf_free(&h);
    buf_free(&h2);
}
END_TEST

START_TEST(make_appends)
{
    struct buf h;
    const char *why;

    buf_init(&h);
    buf_adds(&h, "password=");
    ck_assert_int_eq(pw_hash_make("sha512", 0, "x", &h, &why), 0);
    ck_assert(!strncmp(h.data, "password={SHA512-CRYPT}$6$", 26));
    ck_assert_int_eq(pw_hash_verify(h.data + 9, "x"), 1);
    buf_free(&h);
}
END_TEST

START_TEST(make_refuses)
{
    static const struct {
        const char *scheme;
        int cost;
        int plain_len;          /* 'x' repeated, or -1 for "secret" */
        const char *why;
    } bad[] = {
        { "yescrypt", 0, 0, "empty password refused" },
        { "bcrypt", 12, 0, "empty password refused" },
        { "md5", 0, -1, "unknown password scheme; use yescrypt, bcrypt or sha512" },
        { "YESCRYPT", 0, -1, "unknown password scheme; use yescrypt, bcrypt or sha512" },
        { "bcrypt", 3, -1, "bcrypt cost must be 4 to 31" },
        { "bcrypt", 32, -1, "bcrypt cost must be 4 to 31" },
        { "bcrypt", 0, -1, "bcrypt cost must be 4 to 31" },
        { "bcrypt", 4, 73, "bcrypt uses only the first 72 bytes of a password; use yescrypt or a "
                           "shorter password" },
        { "yescrypt", 0, 512, "password is longer than 511 bytes" },
    };
    char plain[600];
    const char *why;
    struct buf h;

    buf_init(&h);
    buf_adds(&h, "keep");
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        why = NULL;
        if (bad[i].plain_len < 0) {
            strcpy(plain, "secret");
        } else {
            memset(plain, 'x', (size_t)bad[i].plain_len);
            plain[bad[i].plain_len] = 0;
        }
        ck_assert_int_eq(pw_hash_make(bad[i].scheme, bad[i].cost, plain, &h, &why), -1);
        ck_assert_str_eq(why, bad[i].why);
        ck_assert_str_eq(h.data, "keep");
    }
    /* the limits themselves are fine */
    memset(plain, 'x', 72);
    plain[72] = 0;
    ck_assert_int_eq(pw_hash_make("bcrypt", 4, plain, &h, &why), 0);
    memset(plain, 'x', 511);
    plain[511] = 0;
    buf_reset(&h);
    ck_assert_int_eq(pw_hash_make("yescrypt", 0, plain, &h, &why), 0);
    ck_assert_int_eq(pw_hash_verify(h.data, plain), 1);
    buf_free(&h);
}
END_TEST

/* --- ready hashes ------------------------------------------------------------------ */

static const struct {
    const char *hash;
    const char *plain;          /* NULL: cannot be verified here */
} good[] = {
    { "{SHA512-CRYPT}" SHA512_HELLO, "Hello world!" },
    { "{SHA512-CRYPT}$6$rounds=10000$saltstringsaltst$OW1/O6BYHV6BcXZu8QVeXbDWra3Oeqh0sbHbbMCVNSnCM/"
      "UrjmM0Dp8vOuZeHBy/YTBmSK6H9qs/y3RnOaw5v.", "Hello world!" },
    { "{SHA256-CRYPT}" SHA256_HELLO, "Hello world!" },
    { "{BLF-CRYPT}" BCRYPT_UU, "U*U" },
    { "{BLF-CRYPT}$2y$04$abcdefghijklmnopqrstuuyvPXIbu7xe6/CED2DzX8z6Si09MlzlW", "pw" },
    { "{CRYPT}" BCRYPT_UU, "U*U" },
    { "{CRYPT}" SHA512_HELLO, "Hello world!" },
    { "{CRYPT}" SHA256_HELLO, "Hello world!" },
    { "{CRYPT}$y$j9T$abcdefghijklmnopqrstu.$wMgPjppPh0voO6ZUkA63VocGA4VzpDC9TrKArBfq7UC", "pw" },
    { "{CRYPT}$gy$j9T$abcdefghijklmnopqrstu.$Lrg6zwN3tC2ZDtz6Za3qEMBuqWDfN64pZ4tLk675LPC", "pw" },
    { "{CRYPT}$7$CU..../....abc$8mpmwDfPwXvAD4FQLaqP0K4jqc.9uy5ID9yj4xdVLb3", "pw" },
    { ARGON("m=65536,t=2,p=1"), NULL },
    { ARGON("m=8,t=1,p=1"), NULL },
    { ARGON("m=4294967295,t=4294967295,p=16777215"), NULL },
};

START_TEST(good_hashes)
{
    const char *why = NULL;
    size_t n = strlen(good[_i].hash);

    ck_assert_msg(pw_hash_check(good[_i].hash, &why), "%s: %s", good[_i].hash, why);
    if (good[_i].plain == NULL) {
        ck_assert_int_eq(pw_hash_verify(good[_i].hash, "password"), 0);
        return;
    }
    ck_assert_int_eq(pw_hash_verify(good[_i].hash, good[_i].plain), 1);
    ck_assert_int_eq(pw_hash_verify(good[_i].hash, "wrong"), 0);
    ck_assert_int_eq(pw_hash_verify(good[_i].hash, ""), 0);
    /* one character of the hash changed: no match */
    {
        char *t = strdup(good[_i].hash);
        t[n - 2] = t[n - 2] == 'a' ? 'b' : 'a';
        ck_assert_int_eq(pw_hash_verify(t, good[_i].plain), 0);
        free(t);
    }
}
END_TEST

static const struct {
    const char *hash;
    const char *why;
} bad[] = {
    /* anywhere */
    { "", "password hash is empty" },
    { "{CRYPT}$6$salt string$" C86, "password hash has a space or a control character" },
    { "{CRYPT}" SHA512_HELLO " ", "password hash has a space or a control character" },
    { "{CRYPT}\t" SHA512_HELLO, "password hash has a space or a control character" },
    { "{CRYPT}" SHA512_HELLO "\n", "password hash has a space or a control character" },
    { "{CRYPT}$6$salt\x7f$" C86, "password hash has a space or a control character" },
    { "{CRYPT}$6$s\xc3\xa4lt$" C86, "password hash has a non-ASCII character" },
    { SHA512_HELLO, "password hash has no {SCHEME} prefix, such as {CRYPT}" },
    { "hunter2", "password hash has no {SCHEME} prefix, such as {CRYPT}" },
    { "{CRYPT" SHA512_HELLO, "password hash has an unterminated {SCHEME} prefix" },
    { "{crypt}" SHA512_HELLO, "password hash scheme names are upper case, such as {CRYPT}" },
    { "{Blf-Crypt}" BCRYPT_UU, "password hash scheme names are upper case, such as {CRYPT}" },
    { "{PLAIN}hunter2", "plaintext password schemes are refused; give a hash" },
    { "{CLEARTEXT}hunter2", "plaintext password schemes are refused; give a hash" },
    { "{MD5-CRYPT}$1$abcdefgh$" C10, "unknown password hash scheme; use {CRYPT}, {BLF-CRYPT}, "
                                     "{SHA512-CRYPT}, {SHA256-CRYPT} or {ARGON2ID}" },
    { "{ARGON2I}$argon2i$v=19$m=65536,t=2,p=1$" ARGON_SALT "$" ARGON_HASH,
      "unknown password hash scheme; use {CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT}, {SHA256-CRYPT} or "
      "{ARGON2ID}" },
    { "{}" SHA512_HELLO, "unknown password hash scheme; use {CRYPT}, {BLF-CRYPT}, {SHA512-CRYPT}, "
                         "{SHA256-CRYPT} or {ARGON2ID}" },
    /* {CRYPT} */
    { "{CRYPT}$1$abcdefgh$" C10 "ab", "MD5 crypt is too weak; use $y$, $2b$ or $6$" },
    { "{CRYPT}abJnggxhB/yWI", "{CRYPT} hash must start with $ (DES crypt is too weak)" },
    { "{CRYPT}$3$$" C43, "{CRYPT} hash must be $y$, $gy$, $2a$, $2b$, $2y$, $5$, $6$ or $7$" },
    { "{CRYPT}", "{CRYPT} hash must start with $ (DES crypt is too weak)" },
    /* yescrypt */
    { "{CRYPT}$y$$salt$" C43, "yescrypt parameters are empty" },
    { "{CRYPT}$y$j9T", "yescrypt hash has no $ after its parameters" },
    { "{CRYPT}$y$j9_T$salt$" C43, "yescrypt parameters have a character outside [./0-9A-Za-z]" },
    { "{CRYPT}$y$j9T$$" C43, "yescrypt salt is empty" },
    { "{CRYPT}$y$j9T$salt", "yescrypt hash has no $ between its salt and its hash" },
    { "{CRYPT}$y$j9T$sa-lt$" C43, "yescrypt salt has a character outside [./0-9A-Za-z]" },
    { "{CRYPT}$y$j9T$salt$" C42, "yescrypt hash part must be 43 characters" },
    { "{CRYPT}$y$j9T$salt$" C43 "a", "yescrypt hash part must be 43 characters" },
    { "{CRYPT}$y$j9T$salt$" C42 "+", "yescrypt hash part has a character outside [./0-9A-Za-z]" },
    { "{CRYPT}$y$j9T$salt$" C43 "$", "yescrypt hash part has a character outside [./0-9A-Za-z]" },
    { "{CRYPT}$gy$j9T$salt$" C10, "gost-yescrypt hash part must be 43 characters" },
    { "{CRYPT}$gy$$salt$" C43, "gost-yescrypt parameters are empty" },
    /* bcrypt */
    { "{BLF-CRYPT}$2x$05$" C53, "bcrypt hash must start with $2a$, $2b$ or $2y$" },
    { "{BLF-CRYPT}$2$05$" C53, "bcrypt hash must start with $2a$, $2b$ or $2y$" },
    { "{BLF-CRYPT}" SHA512_HELLO, "{BLF-CRYPT} hash must start with $2a$, $2b$ or $2y$" },
    { "{BLF-CRYPT}$2b$5$" C53, "bcrypt cost must be two digits followed by $" },
    { "{BLF-CRYPT}$2b$005$" C53, "bcrypt cost must be two digits followed by $" },
    { "{BLF-CRYPT}$2b$03$" C53, "bcrypt cost must be 04 to 31" },
    { "{BLF-CRYPT}$2b$32$" C53, "bcrypt cost must be 04 to 31" },
    { "{BLF-CRYPT}$2b$00$" C53, "bcrypt cost must be 04 to 31" },
    { "{BLF-CRYPT}$2b$05$" C52, "bcrypt salt and hash must be 53 characters (22 + 31)" },
    { "{BLF-CRYPT}$2b$05$" C54, "bcrypt salt and hash must be 53 characters (22 + 31)" },
    { "{BLF-CRYPT}$2b$05$" C52 "=", "bcrypt salt and hash have a character outside [./0-9A-Za-z]" },
    { "{BLF-CRYPT}$2b$05$" C10 "$" C42, "bcrypt salt and hash have a character outside [./0-9A-Za-z]" },
    { "{CRYPT}$2b$05$" C54, "bcrypt salt and hash must be 53 characters (22 + 31)" },
    { "{CRYPT}$2c$05$" C53, "bcrypt hash must start with $2a$, $2b$ or $2y$" },
    /* SHA-512 crypt */
    { "{SHA512-CRYPT}" SHA256_HELLO, "{SHA512-CRYPT} hash must start with $6$" },
    { "{SHA512-CRYPT}" BCRYPT_UU, "{SHA512-CRYPT} hash must start with $6$" },
    { "{SHA512-CRYPT}$6$rounds=999$salt$" C86, "SHA-512 crypt rounds= must be 1000 to 999999999" },
    { "{SHA512-CRYPT}$6$rounds=0$salt$" C86, "SHA-512 crypt rounds= must be 1000 to 999999999" },
    { "{SHA512-CRYPT}$6$rounds=1000000000$salt$" C86,
      "SHA-512 crypt rounds= must be 1000 to 999999999" },
    { "{SHA512-CRYPT}$6$rounds=99999999999999999999$salt$" C86,
      "SHA-512 crypt rounds= must be 1000 to 999999999" },
    { "{SHA512-CRYPT}$6$rounds=05000$salt$" C86, "SHA-512 crypt rounds= must not have a leading zero" },
    { "{SHA512-CRYPT}$6$rounds=$salt$" C86, "SHA-512 crypt rounds= must be a number followed by $" },
    { "{SHA512-CRYPT}$6$rounds=5000x$salt$" C86, "SHA-512 crypt rounds= must be a number followed by $" },
    { "{SHA512-CRYPT}$6$rounds=5000", "SHA-512 crypt rounds= must be a number followed by $" },
    { "{SHA512-CRYPT}$6$saltstring", "SHA-512 crypt hash has no $ between its salt and its hash" },
    { "{SHA512-CRYPT}$6$", "SHA-512 crypt hash has no $ between its salt and its hash" },
    { "{SHA512-CRYPT}$6$$" C86, "SHA-512 crypt salt is empty" },
    { "{SHA512-CRYPT}$6$rounds=5000$$" C86, "SHA-512 crypt salt is empty" },
    { "{SHA512-CRYPT}$6$saltstringsaltstr$" C86, "SHA-512 crypt salt is longer than 16 characters" },
    { "{SHA512-CRYPT}$6$salt:string$" C86, "SHA-512 crypt salt has a character outside [./0-9A-Za-z]" },
    { "{SHA512-CRYPT}$6$saltstring$" C85, "SHA-512 crypt hash part must be 86 characters" },
    { "{SHA512-CRYPT}$6$saltstring$" C86 "x", "SHA-512 crypt hash part must be 86 characters" },
    { "{SHA512-CRYPT}$6$saltstring$" C85 "$",
      "SHA-512 crypt hash part has a character outside [./0-9A-Za-z]" },
    { "{SHA512-CRYPT}$6$saltstring$", "SHA-512 crypt hash part must be 86 characters" },
    { "{CRYPT}$6$saltstring$" C43, "SHA-512 crypt hash part must be 86 characters" },
    /* SHA-256 crypt */
    { "{SHA256-CRYPT}" SHA512_HELLO, "{SHA256-CRYPT} hash must start with $5$" },
    { "{SHA256-CRYPT}$5$saltstring$" C86, "SHA-256 crypt hash part must be 43 characters" },
    { "{SHA256-CRYPT}$5$rounds=100$saltstring$" C43, "SHA-256 crypt rounds= must be 1000 to 999999999" },
    { "{SHA256-CRYPT}$5$salt_string$" C43, "SHA-256 crypt salt has a character outside [./0-9A-Za-z]" },
    { "{CRYPT}$5$saltstring", "SHA-256 crypt hash has no $ between its salt and its hash" },
    /* scrypt */
    { "{CRYPT}$7$CU..../....$" C43,
      "scrypt parameters and salt are too short (11 characters of parameters, then a salt)" },
    { "{CRYPT}$7$CU..../....abc", "scrypt hash has no $ between its salt and its hash" },
    { "{CRYPT}$7$CU..../....a_c$" C43, "scrypt parameters and salt have a character outside [./0-9A-Za-z]" },
    { "{CRYPT}$7$CU..../....abc$" C42, "scrypt hash part must be 43 characters" },
    { "{CRYPT}$7$CU..../....abc$" C42 "-", "scrypt hash part has a character outside [./0-9A-Za-z]" },
    /* argon2id */
    { "{ARGON2ID}$argon2i$v=19$m=65536,t=2,p=1$" ARGON_SALT "$" ARGON_HASH,
      "{ARGON2ID} hash must start with $argon2id$" },
    { "{ARGON2ID}" SHA512_HELLO, "{ARGON2ID} hash must start with $argon2id$" },
    { "{ARGON2ID}$argon2id$v=16$m=65536,t=2,p=1$" ARGON_SALT "$" ARGON_HASH,
      "argon2id version must be v=19" },
    { "{ARGON2ID}$argon2id$m=65536,t=2,p=1$" ARGON_SALT "$" ARGON_HASH, "argon2id version must be v=19" },
    { ARGON("m=65536,t=2"), "argon2id parameters must be m=N,t=N,p=N$ (numbers without leading zeros)" },
    { ARGON("t=2,m=65536,p=1"), "argon2id parameters must be m=N,t=N,p=N$ (numbers without leading zeros)" },
    { ARGON("m=065536,t=2,p=1"), "argon2id parameters must be m=N,t=N,p=N$ (numbers without leading zeros)" },
    { ARGON("m=65536,t=2,p=1,x=1"), "argon2id parameters must be m=N,t=N,p=N$ (numbers without leading zeros)" },
    { ARGON("m=4294967296,t=2,p=1"), "argon2id parameters must be m=N,t=N,p=N$ (numbers without leading zeros)" },
    { ARGON("m=,t=2,p=1"), "argon2id parameters must be m=N,t=N,p=N$ (numbers without leading zeros)" },
    { ARGON("m=65536,t=0,p=1"), "argon2id t= must be at least 1" },
    { ARGON("m=65536,t=2,p=0"), "argon2id p= must be 1 to 16777215" },
    { ARGON("m=4294967295,t=2,p=16777216"), "argon2id p= must be 1 to 16777215" },
    { ARGON("m=15,t=2,p=2"), "argon2id m= must be at least 8 times p=" },
    { "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$" ARGON_SALT,
      "argon2id hash has no $ between its salt and its hash" },
    { "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQ=$" ARGON_HASH,
      "argon2id salt must be base64 without padding" },
    { "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29t.XNhbHQ$" ARGON_HASH,
      "argon2id salt must be base64 without padding" },
    { "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNh$" ARGON_HASH,
      "argon2id salt must be at least 8 bytes (11 base64 characters)" },
    { "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$c29tZXNhbHQxM$" ARGON_HASH,
      "argon2id salt has an impossible base64 length" },
    { "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$" ARGON_SALT "$" ARGON_HASH "=",
      "argon2id hash part must be base64 without padding" },
    { "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$" ARGON_SALT "$" ARGON_HASH "$x",
      "argon2id hash part must be base64 without padding" },
    { "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$" ARGON_SALT "$CTFhFdXPJO1aFaMaO6Mm",
      "argon2id hash part must be at least 16 bytes (22 base64 characters)" },
    { "{ARGON2ID}$argon2id$v=19$m=65536,t=2,p=1$" ARGON_SALT "$" ARGON_HASH "AB",
      "argon2id hash part has an impossible base64 length" },
};

START_TEST(bad_hashes)
{
    const char *why = NULL;

    ck_assert_msg(!pw_hash_check(bad[_i].hash, &why), "accepted: %s", bad[_i].hash);
    ck_assert_msg(why != NULL && !strcmp(why, bad[_i].why), "%s: got \"%s\", want \"%s\"",
                  bad[_i].hash, why ? why : "(null)", bad[_i].why);
    ck_assert_int_eq(pw_hash_verify(bad[_i].hash, "Hello world!"), 0);
}
END_TEST

START_TEST(too_long)
{
    struct buf h;
    const char *why = NULL;

    buf_init(&h);
    buf_adds(&h, "{CRYPT}$6$saltstring$");
    while (h.len <= PW_HASH_MAX)
        buf_addc(&h, 'a');
    ck_assert(!pw_hash_check(h.data, &why));
    ck_assert_str_eq(why, "password hash is longer than 512 characters");
    buf_free(&h);
}
END_TEST

START_TEST(verify_wrong_scheme)
{
    /* a valid crypt string under the wrong prefix is refused, not verified */
    ck_assert_int_eq(pw_hash_verify("{SHA512-CRYPT}" SHA256_HELLO, "Hello world!"), 0);
    ck_assert_int_eq(pw_hash_verify("{BLF-CRYPT}" SHA512_HELLO, "Hello world!"), 0);
    ck_assert_int_eq(pw_hash_verify(SHA512_HELLO, "Hello world!"), 0);
}
END_TEST

/* --- the shared table: the same cases, with their verdicts, go through the
 * SQL check mailroster.password_hash_ok() in trust_admin_test.sh ---------- */

START_TEST(shared_table)
{
    const char *dir = getenv("srcdir");
    char path[4096], line[2048];
    int n = 0;
    snprintf(path, sizeof(path), "%s/tests/unit/pwhash_cases.tsv", dir && *dir ? dir : ".");
    FILE *f = fopen(path, "r");
    ck_assert_msg(f != NULL, "cannot open %s (set srcdir to the source tree)", path);
    while (fgets(line, sizeof(line), f)) {
        char *verdict = line, *what, *hash;
        const char *why = NULL;
        line[strcspn(line, "\n")] = 0;
        if (line[0] == '#' || line[0] == 0)
            continue;
        what = strchr(verdict, '\t');
        ck_assert_ptr_nonnull(what);
        *what++ = 0;
        hash = strchr(what, '\t');
        ck_assert_ptr_nonnull(hash);
        *hash++ = 0;
        int want = !strcmp(verdict, "good");
        ck_assert_msg(want || !strcmp(verdict, "bad"), "bad verdict %s", verdict);
        ck_assert_msg(pw_hash_check(hash, &why) == want, "%s (%s): expected %s, got %s%s", what, hash, verdict,
                      want ? "refused: " : "accepted", want ? why : "");
        n++;
    }
    fclose(f);
    ck_assert_int_gt(n, 50);
}
END_TEST

Suite *pwhash_suite(void)
{
    Suite *s = suite_create("pwhash");
    TCase *tc = tcase_create("pwhash");

    tcase_set_timeout(tc, 30);
    tcase_add_loop_test(tc, make_check_verify, 0, (int)(sizeof(made) / sizeof(made[0])));
    tcase_add_test(tc, make_appends);
    tcase_add_test(tc, make_refuses);
    tcase_add_loop_test(tc, good_hashes, 0, (int)(sizeof(good) / sizeof(good[0])));
    tcase_add_loop_test(tc, bad_hashes, 0, (int)(sizeof(bad) / sizeof(bad[0])));
    tcase_add_test(tc, too_long);
    tcase_add_test(tc, verify_wrong_scheme);
    tcase_add_test(tc, shared_table);
    suite_add_tcase(s, tc);
    return s;
}
