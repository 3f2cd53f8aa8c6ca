/* fuzz_admin.c - the admin socket's command layer (admin.c: adm_handler,
 * the command table, the option parsers of every command) from request
 * lines to the prepared job, without a database.
 *
 * Input: one byte, bits 0-1 choosing the caller (admin, domain admin of
 * example.com, read-only, not allowed), bit 2 how the database answers;
 * then the bytes a client sends on one connection. They are handed to
 * adm_handler the way srv.c does: line by line, nothing read while a
 * write is with the database thread. That thread is the one thing
 * replaced (linked with --wrap, see build.sh): adm_db_submit checks the
 * prepared job and queues it, and the loop below answers it through
 * adm_job_done, "unavailable" as a database that is down would, or (bit
 * 2) committed at the next change, which the directory then shows
 * (adm_dir_advanced). srv_conn_* are the connection's, kept here. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "adm_db.h"
#include "admin.h"
#include "admproto.h"
#include "fixture.h"
#include "log.h"
#include "srv.h"

extern int (*adm_run_refusal)(void *, struct adm_job *);

enum { UID_ADMIN = 100001, UID_DOMAIN = 100002, UID_READONLY = 100003, UID_NONE = 100004 };

static struct dir *D;
static struct lk_stats lk_stats;
static struct auth_stats auth_stats;
static struct pol_stats pol_stats;

/* the one connection */
static struct {
    uid_t uid;
    int suspended;
    void *data;
    void (*data_free)(void *);
    struct buf replies;         /* what srv_conn_reply sent */
    struct adm_job *jobs;       /* with the "database thread" */
} C;
#define CONN ((struct srv_conn *)&C)

void __wrap_srv_conn_suspend(struct srv_conn *c);
void __wrap_srv_conn_reply(struct srv_conn *c, const char *data, size_t len);
void __wrap_srv_conn_reply_part(struct srv_conn *c, const char *data, size_t len);
void *__wrap_srv_conn_data(const struct srv_conn *c);
void __wrap_srv_conn_set_data(struct srv_conn *c, void *data, void (*free_fn)(void *));
int __wrap_srv_conn_peer(const struct srv_conn *c, uid_t *uid, gid_t *gid, pid_t *pid);
void __wrap_adm_db_submit(struct adm_job *j);
void __wrap_adm_db_stop(void);

void __wrap_srv_conn_suspend(struct srv_conn *c)
{
    FUZZ_CHECK(c == CONN && !C.suspended);
    C.suspended = 1;
}

void __wrap_srv_conn_reply(struct srv_conn *c, const char *data, size_t len)
{
    FUZZ_CHECK(c == CONN);
    C.suspended = 0;
    buf_add(&C.replies, data, len);
}

/* part of the answer of a request that stays suspended */
void __wrap_srv_conn_reply_part(struct srv_conn *c, const char *data, size_t len)
{
    FUZZ_CHECK(c == CONN && C.suspended);
    buf_add(&C.replies, data, len);
}

void *__wrap_srv_conn_data(const struct srv_conn *c)
{
    FUZZ_CHECK(c == CONN);
    return C.data;
}

void __wrap_srv_conn_set_data(struct srv_conn *c, void *data, void (*free_fn)(void *))
{
    FUZZ_CHECK(c == CONN);
    if (C.data_free)
        C.data_free(C.data);
    C.data = data;
    C.data_free = free_fn;
}

int __wrap_srv_conn_peer(const struct srv_conn *c, uid_t *uid, gid_t *gid, pid_t *pid)
{
    FUZZ_CHECK(c == CONN);
    *uid = C.uid;
    *gid = C.uid;
    *pid = 4242;
    return 0;
}

/* a column or cast spliced into SQL text: from admin.c's tables, never
 * from the request */
static int sql_word(const char *s)
{
    if (s == NULL || *s == 0)
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '[' || *s == ']'))
            return 0;
    return 1;
}

void __wrap_adm_db_submit(struct adm_job *j)
{
    FUZZ_CHECK(j != NULL && j->run != NULL && j->cmd != NULL && j->next == NULL);
    FUZZ_CHECK(j->nset >= 0 && j->nset <= 24 && j->nlist >= 0);
    for (int i = 0; i < j->nset; i++) {
        FUZZ_CHECK(sql_word(j->set_col[i]) && sql_word(j->set_cast[i]));
        if (j->set_val[i])
            (void)strlen(j->set_val[i]);   /* terminated (ASan reads it) */
    }
    for (int i = 0; i < j->nlist; i++)
        FUZZ_CHECK(j->list != NULL && j->list[i] != NULL);
    FUZZ_CHECK(j->args.argc >= 0 && j->args.argc <= ADM_MAX_ARGS);
    /* who may write: not a stranger at all (not even an audit row), and
     * a read-only caller only reads (or has a refusal audited) */
    FUZZ_CHECK(C.uid != UID_NONE);
    if (C.uid == UID_READONLY)
        FUZZ_CHECK(j->read_only || j->run == adm_run_refusal);
    /* an audit row has no one to answer; anything else suspends the
     * connection first */
    FUZZ_CHECK(j->conn == NULL || (j->conn == CONN && C.suspended));
    j->next = C.jobs;
    C.jobs = j;
}

void __wrap_adm_db_stop(void)
{
}

/* the database thread's answer: unavailable, nothing committed; or
 * committed, as the directory's next change (an audit row: no change) */
static void run_jobs(int commit)
{
    while (C.jobs) {
        struct adm_job *j = C.jobs;
        C.jobs = j->next;
        j->next = NULL;
        j->ok = commit;
        j->seq = commit && j->conn ? D->seq + 1 : 0;
        buf_reset(&j->reply);
        buf_adds(&j->reply, commit ? "OK\n" : "ERR unavailable the admin database is not reachable\n");
        adm_job_done(j);
    }
    if (commit)
        adm_dir_advanced(D->seq + 1);
}

static const struct dir *the_dir(void)
{
    return D;
}

static void status_rows(struct buf *out)
{
    buf_adds(out, "* state=fuzz\n");
}

/* An answer: rows "* ...", then one final line "OK ..." or "ERR CODE ...",
 * each ending in a newline. A line break from the request inside a value
 * would show here as a line of another kind. */
static void check_answer(const char *a, size_t len)
{
    FUZZ_CHECK(len > 0 && a[len - 1] == '\n');
    FUZZ_CHECK(memchr(a, 0, len) == NULL);
    const char *p = a, *end = a + len;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        int last = nl + 1 == end;
        if (last)
            FUZZ_CHECK(!strncmp(p, "OK", 2) || !strncmp(p, "ERR ", 4));
        else
            FUZZ_CHECK(*p == '*');
        p = nl + 1;
    }
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_init("fuzz_admin", 0);
    D = fuzz_fixture_dir(0);
    struct adm_host host = { the_dir, "+", &lk_stats, &auth_stats, &pol_stats, status_rows, 1 };
    adm_init(&host);
    adm_set_access("100001", "100003", "100002:example.com");
    buf_init(&C.replies);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const uid_t uids[4] = { UID_ADMIN, UID_DOMAIN, UID_READONLY, UID_NONE };
    struct buf out;

    if (size < 1)
        return 0;
    C.uid = uids[data[0] & 3];
    int commit = (data[0] & 4) != 0;
    C.suspended = 0;
    buf_reset(&C.replies);
    buf_init(&out);
    /* an exact-size copy: reads past the end are caught */
    size_t len = size - 1, off = 0;
    char *in = malloc(len ? len : 1);
    FUZZ_CHECK(in != NULL);
    memcpy(in, data + 1, len);
    size_t frame = 0;   /* octets of an "import data" frame still to come */
    while (off < len) {
        size_t mark = out.len;
        ssize_t used = adm_handler(NULL, CONN, in + off, len - off, &out);
        if (used <= 0) {
            /* -1: too long or a frame refused, closed with an answer; 0:
             * no whole line left */
            FUZZ_CHECK(used == 0 || frame == 0);
            if (used < 0) {
                check_answer(out.data + mark, out.len - mark);
                run_jobs(commit);   /* the audit row of a refused frame */
            }
            break;
        }
        FUZZ_CHECK((size_t)used <= len - off);
        if (frame > 0) {
            /* inside a frame: its octets as they are, the answer at its end */
            FUZZ_CHECK((size_t)used <= frame && !C.suspended);
            off += (size_t)used;
            frame -= (size_t)used;
            if (frame > 0)
                FUZZ_CHECK(out.len == mark);
            else
                check_answer(out.data + mark, out.len - mark);
            continue;
        }
        if (!C.suspended && out.len == mark) {
            /* no answer yet: only a frame's header, "import data N" */
            struct adm_args a;
            const char *why;
            size_t l = (size_t)used - 1;
            if (l > 0 && in[off + l - 1] == '\r')
                l--;
            adm_args_init(&a);
            FUZZ_CHECK(adm_split(&a, in + off, l, &why) == 0 && a.argc == 3 && !strcmp(a.argv[0], "import") &&
                       !strcmp(a.argv[1], "data"));
            frame = strtoul(a.argv[2], NULL, 10);
            adm_args_free(&a);
            FUZZ_CHECK(frame > 0);
            off += (size_t)used;
            continue;
        }
        off += (size_t)used;
        if (C.suspended) {
            /* a write: its answer comes from the database thread */
            FUZZ_CHECK(out.len == mark);
            size_t r = C.replies.len;
            run_jobs(commit);
            FUZZ_CHECK(!C.suspended && C.replies.len > r);
            check_answer(C.replies.data + r, C.replies.len - r);
        } else {
            check_answer(out.data + mark, out.len - mark);
            run_jobs(commit);   /* audit rows of refusals */
        }
    }
    FUZZ_CHECK(C.jobs == NULL);
    /* the connection closes */
    __wrap_srv_conn_set_data(CONN, NULL, NULL);
    free(in);
    buf_free(&out);
    return 0;
}
