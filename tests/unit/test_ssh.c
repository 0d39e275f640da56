/* test_ssh.c — the SSH runner (ssh.h) against a real sshd, one scenario per
 * run, TAP on stdout. tests/test_ssh_core.py starts the sshds and drives
 * it:
 *
 *   test_ssh SCENARIO host=127.0.0.1 port=N user=root key=FILE
 *            known_hosts=FILE dir=DIR [port_b=N] [stall_port=N]
 *            [closed_port=N] [rsa_key=FILE] [other_key=FILE] [explicit=0|1]
 *            [timeout=S] [expect=match|refused]
 *            [bytes=N runs=N after=0|1]   (throughput, latency)
 *            [full=DIR]   (full: a small tmpfs)
 *
 * Scenarios: basic interleave big stream concurrent pods hostkey known rsa
 * lost unreachable file full signal reuse throughput latency agent watch
 * recycle abandon frozen redial. [keepalive=S] sets the pool's keepalive
 * interval.
 *
 * Where a scenario needs the pod to change under it (killed, restarted,
 * given a new host key) it prints "@@ ACTION" and waits for a line on
 * stdin once the driver has done it. Lines starting "# " carry numbers the
 * driver reads (timings, byte counts). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "ssh.h"
#include "t.h"

static int n_args;
static char **args;

static const char *arg(const char *name, const char *def)
{
	size_t n = strlen(name);
	for (int i = 0; i < n_args; i++)
		if (!strncmp(args[i], name, n) && args[i][n] == '=')
			return args[i] + n + 1;
	return def;
}

static char conn_a[256], conn_b[256];

static void make_conn(char *out, const char *port)
{
	snprintf(out, 256, "%s@%s -p %s", arg("user", "root"),
		 arg("host", "127.0.0.1"), port);
}

static struct ssh_opts opts(void)
{
	struct ssh_opts o = {
	    .known_hosts = arg("known_hosts", NULL),
	    .key_path = arg("key", NULL),
	    .key_explicit = atoi(arg("explicit", "1")) != 0,
	    .timeout = atof(arg("timeout", "10")),
	    .keepalive = atof(arg("keepalive", "15")),
	};
	return o;
}

/* Asks the driver to act on the pods, and waits until it has. */
static void action(const char *what)
{
	char line[64];
	printf("@@ %s\n", what);
	fflush(stdout);
	if (!fgets(line, sizeof line, stdin)) {
		fprintf(stderr, "no answer to action %s\n", what);
		exit(2);
	}
}

static bool log_has(const char *needle)
{
	struct buf b;
	buf_init(&b);
	log_render(&b);
	bool r = b.data && strstr(b.data, needle);
	buf_free(&b);
	return r;
}

/* Reads everything a command outputs, following it until its end (or
 * `limit` seconds); true when the end was reached. */
static bool read_all(struct ssh_cmd *c, struct ssh_cursor *cur, struct buf *out,
		     double limit)
{
	double end = now_monotonic() + limit;
	char tmp[65536];
	for (;;) {
		bool eof = false;
		size_t n = ssh_cmd_read(c, cur, tmp, sizeof tmp, &eof);
		if (n) {
			buf_add(out, tmp, n);
			continue;
		}
		if (eof)
			return true;
		double left = end - now_monotonic();
		if (left <= 0)
			return false;
		ssh_cmd_wait(c, cur, left);
	}
}

struct result {
	int rc;
	struct buf out, exit;
	bool ended;
};

static void run_cmd(struct ssh_pool *p, const char *pod, const char *conn,
		    const char *cmdline, struct result *r)
{
	struct ssh_cmd *c = NULL;
	buf_init(&r->out);
	buf_init(&r->exit);
	r->ended = false;
	r->rc = ssh_run(p, pod, conn, cmdline, -1, NULL, NULL, &c);
	if (r->rc)
		return;
	struct ssh_cursor cur = {0, false};
	r->ended = read_all(c, &cur, &r->out, 60);
	ssh_cmd_exit_text(c, &r->exit);
	ssh_cmd_put(c);
}

static void result_free(struct result *r)
{
	buf_free(&r->out);
	buf_free(&r->exit);
}

static const char *S(const struct buf *b)
{
	return b->data ? b->data : "";
}

/* ---- scenarios ---- */

static void sc_basic(struct ssh_pool *p)
{
	struct result r;
	double t0 = now_monotonic();
	run_cmd(p, "pod-a", conn_a, "echo hello", &r);
	printf("# first_run_ms %.1f\n", (now_monotonic() - t0) * 1000);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "hello\n");
	CHECK_STR(S(&r.exit), "0\n");
	result_free(&r);

	t0 = now_monotonic();
	run_cmd(p, "pod-a", conn_a, "true", &r);
	printf("# true_ms %.1f\n", (now_monotonic() - t0) * 1000);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "");
	CHECK_STR(S(&r.exit), "0\n");
	result_free(&r);

	run_cmd(p, "pod-a", conn_a, "echo three; exit 3", &r);
	CHECK_STR(S(&r.out), "three\n");
	CHECK_STR(S(&r.exit), "3\n");
	result_free(&r);

	run_cmd(p, "pod-a", conn_a, "kill -KILL $$", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.exit), "signal KILL\n");
	result_free(&r);

	/* The line runs with the user's shell. */
	run_cmd(p, "pod-a", conn_a, "for i in 1 2 3; do printf $i; done", &r);
	CHECK_STR(S(&r.out), "123");
	result_free(&r);

	/* Before the end, exit says nothing. */
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(p, "pod-a", conn_a, "sleep 0.5", -1, NULL, NULL, &c) ==
	      0);
	if (c) {
		struct buf e;
		buf_init(&e);
		CHECK(!ssh_cmd_done(c));
		ssh_cmd_exit_text(c, &e);
		CHECK(e.len == 0);
		CHECK(ssh_cmd_wait_done(c, 10, NULL, NULL));
		ssh_cmd_exit_text(c, &e);
		CHECK_STR(S(&e), "0\n");
		buf_free(&e);
		ssh_cmd_put(c);
	}
}

static void sc_interleave(struct ssh_pool *p)
{
	struct result r;
	run_cmd(p, "pod-a", conn_a,
		"echo out1; sleep 0.3; echo err1 >&2; sleep 0.3; echo out2; "
		"sleep 0.3; echo err2 >&2",
		&r);
	CHECK_STR(S(&r.out), "out1\nerr1\nout2\nerr2\n");
	CHECK_STR(S(&r.exit), "0\n");
	result_free(&r);
}

static size_t count_char(const struct buf *b, char ch)
{
	size_t n = 0;
	for (size_t i = 0; i < b->len; i++)
		n += b->data[i] == ch;
	return n;
}

static void sc_big(struct ssh_pool *p)
{
	/* Both streams past the 2 MB window at once: reading one to its end
	 * first would deadlock. */
	struct result r;
	double t0 = now_monotonic();
	run_cmd(p, "pod-a", conn_a,
		"head -c 5000000 /dev/zero | tr '\\0' a & "
		"head -c 3000000 /dev/zero | tr '\\0' b >&2; wait",
		&r);
	printf("# big_ms %.1f\n", (now_monotonic() - t0) * 1000);
	CHECK(r.rc == 0);
	CHECK(r.ended);
	CHECK(r.out.len == 8000000);
	CHECK(count_char(&r.out, 'a') == 5000000);
	CHECK(count_char(&r.out, 'b') == 3000000);
	CHECK_STR(S(&r.exit), "0\n");
	printf("# bytes %zu\n", r.out.len);
	result_free(&r);
}

static void sc_stream(struct ssh_pool *p)
{
	/* The command cannot end before the gate file exists: its first line
	 * read while the gate is closed came while it still ran. */
	char gate[512], cmd[1200];
	snprintf(gate, sizeof gate, "%s/stream-gate", arg("dir", "/tmp"));
	unlink(gate);
	snprintf(cmd, sizeof cmd,
		 "echo before; while [ ! -e '%s' ]; do sleep 0.05; done; "
		 "echo done",
		 gate);
	struct ssh_cmd *c = NULL;
	double t0 = now_monotonic();
	CHECK(ssh_run(p, "pod-a", conn_a, cmd, -1, NULL, NULL, &c) == 0);
	if (!c)
		return;
	struct ssh_cursor cur = {0, false};
	char buf[256];
	bool eof = false;
	size_t got = 0;
	while (got < 7 && ssh_cmd_wait(c, &cur, 10))
		got += ssh_cmd_read(c, &cur, buf + got, sizeof buf - got, &eof);
	printf("# before_ms %.1f\n", (now_monotonic() - t0) * 1000);
	CHECK(got == 7 && !memcmp(buf, "before\n", 7));
	CHECK(!ssh_cmd_done(c));
	/* Nothing more yet: a non-blocking read says so without EOF. */
	CHECK(ssh_cmd_read(c, &cur, buf, sizeof buf, &eof) == 0 && !eof);
	FILE *f = fopen(gate, "w");
	CHECK(f != NULL);
	if (f)
		fclose(f);
	struct buf rest;
	buf_init(&rest);
	CHECK(read_all(c, &cur, &rest, 10));
	CHECK_STR(S(&rest), "done\n");
	CHECK(ssh_cmd_done(c));
	buf_free(&rest);
	ssh_cmd_put(c);
	unlink(gate);
}

static void sc_concurrent(struct ssh_pool *p)
{
	struct ssh_cmd *a = NULL, *b = NULL;
	double t0 = now_monotonic();
	CHECK(ssh_run(p, "pod-a", conn_a,
		      "for i in 1 2 3 4; do echo A$i; sleep 0.25; done", -1,
		      NULL, NULL, &a) == 0);
	CHECK(ssh_run(p, "pod-a", conn_a,
		      "for i in 1 2 3 4; do echo B$i >&2; sleep 0.25; done; "
		      "exit 4",
		      -1, NULL, NULL, &b) == 0);
	if (!a || !b)
		return;
	struct ssh_cursor ca = {0, false}, cb = {0, false};
	struct buf oa, ob;
	buf_init(&oa);
	buf_init(&ob);
	/* Side by side, not one after the other: both have said something
	 * while neither has ended. */
	char tmp[64];
	bool eof;
	while (oa.len < 3 && ssh_cmd_wait(a, &ca, 5)) {
		size_t n = ssh_cmd_read(a, &ca, tmp, sizeof tmp, &eof);
		buf_add(&oa, tmp, n);
	}
	while (ob.len < 3 && ssh_cmd_wait(b, &cb, 5)) {
		size_t n = ssh_cmd_read(b, &cb, tmp, sizeof tmp, &eof);
		buf_add(&ob, tmp, n);
	}
	CHECK(oa.len >= 3 && ob.len >= 3);
	CHECK(!ssh_cmd_done(a) && !ssh_cmd_done(b));
	CHECK(read_all(a, &ca, &oa, 10));
	CHECK(read_all(b, &cb, &ob, 10));
	printf("# both_ms %.1f\n", (now_monotonic() - t0) * 1000);
	CHECK_STR(S(&oa), "A1\nA2\nA3\nA4\n");
	CHECK_STR(S(&ob), "B1\nB2\nB3\nB4\n");
	struct buf e;
	buf_init(&e);
	ssh_cmd_exit_text(b, &e);
	CHECK_STR(S(&e), "4\n");
	buf_free(&e);
	/* A second reader of a finished command gets it all again. */
	struct ssh_cursor again = {0, false};
	struct buf o2;
	buf_init(&o2);
	CHECK(read_all(a, &again, &o2, 1));
	CHECK_STR(S(&o2), "A1\nA2\nA3\nA4\n");
	buf_free(&o2);
	buf_free(&oa);
	buf_free(&ob);
	ssh_cmd_put(a);
	ssh_cmd_put(b);
}

struct bg_run {
	struct ssh_pool *p;
	const char *pod, *conn, *cmd;
	int rc;
	double took;
	struct ssh_cmd *c;
	atomic_bool done;
};

static void *bg_run_main(void *arg)
{
	struct bg_run *b = arg;
	double t0 = now_monotonic();
	b->rc = ssh_run(b->p, b->pod, b->conn, b->cmd, -1, NULL, NULL, &b->c);
	b->took = now_monotonic() - t0;
	atomic_store(&b->done, true);
	return NULL;
}

static void sc_pods(struct ssh_pool *p)
{
	char conn_stall[256];
	make_conn(conn_stall, arg("stall_port", "1"));
	/* Pod A is busy with a long command; pod S hangs in the handshake;
	 * pod B (connected first) must not notice either. */
	struct result warm;
	run_cmd(p, "pod-b", conn_b, "true", &warm);
	CHECK(warm.rc == 0);
	result_free(&warm);
	struct ssh_cmd *a = NULL;
	CHECK(ssh_run(p, "pod-a", conn_a, "sleep 5", -1, NULL, NULL, &a) == 0);
	struct bg_run st = {p, "pod-stall", conn_stall, "true",
			    0, 0,	    NULL,	false};
	pthread_t th;
	pthread_create(&th, NULL, bg_run_main, &st);
	sleep_seconds(0.2);
	for (int i = 0; i < 3; i++) {
		struct result r;
		double t0 = now_monotonic();
		run_cmd(p, "pod-b", conn_b, "echo b", &r);
		double t = now_monotonic() - t0;
		printf("# pod_b_ms %.1f\n", t * 1000);
		CHECK(r.rc == 0);
		CHECK_STR(S(&r.out), "b\n");
		result_free(&r);
	}
	/* Pod B answered while pod S's handshake still hung (it can only end
	 * at the timeout, which the driver sets far above B's runs). */
	CHECK(!atomic_load(&st.done));
	CHECK(a && !ssh_cmd_done(a));
	pthread_join(th, NULL);
	printf("# stall_ms %.1f\n", st.took * 1000);
	CHECK(st.rc == -EHOSTUNREACH);
	CHECK(st.took < atof(arg("timeout", "10")) + 10); /* not a hang */
	CHECK(log_has("SSH handshake with 127.0.0.1"));
	if (a) {
		CHECK(ssh_cmd_wait_done(a, 10, NULL, NULL));
		ssh_cmd_put(a);
	}
}

static void sc_hostkey(struct ssh_pool *p)
{
	struct result r;
	run_cmd(p, "pod-a", conn_a, "echo first", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "first\n");
	result_free(&r);
	CHECK(log_has("learned host key of pod pod-a at 127.0.0.1 port"));
	/* Known now: the same key is accepted by a new pool without a word. */
	struct ssh_opts o = opts();
	struct ssh_pool *p2 = ssh_pool_new(&o);
	run_cmd(p2, "pod-a", conn_a, "echo again", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "again\n");
	result_free(&r);
	ssh_pool_free(p2);

	action("rekey"); /* sshd restarted with a new host key */
	char cmd[512];
	snprintf(cmd, sizeof cmd, "touch %s/hostkey-marker",
		 arg("dir", "/tmp"));
	struct ssh_cmd *c = NULL;
	int rc = ssh_run(p, "pod-a", conn_a, cmd, -1, NULL, NULL, &c);
	CHECK(rc == -EACCES);
	CHECK(c == NULL);
	CHECK(log_has("HOST KEY CHANGED for pod pod-a (127.0.0.1 port"));
	CHECK(log_has("refusing"));
	snprintf(cmd, sizeof cmd, "%s/hostkey-marker", arg("dir", "/tmp"));
	CHECK(access(cmd, F_OK) != 0);
	/* And again, from a fresh pool: still refused. */
	p2 = ssh_pool_new(&o);
	CHECK(ssh_run(p2, "pod-a", conn_a, "true", -1, NULL, NULL, &c) ==
	      -EACCES);
	ssh_pool_free(p2);
}

/* known_hosts prepared by the driver: expect=match (hashed OpenSSH lines,
 * among lines libssh2 cannot parse) or expect=refused (the host known by a
 * key of another type only). */
static void sc_known(struct ssh_pool *p)
{
	struct result r;
	run_cmd(p, "pod-a", conn_a, "echo known", &r);
	if (!strcmp(arg("expect", ""), "match")) {
		CHECK(r.rc == 0);
		CHECK_STR(S(&r.out), "known\n");
		CHECK(!log_has("learned host key"));
	} else {
		CHECK(r.rc == -EACCES);
		CHECK(log_has("HOST KEY CHANGED for pod pod-a"));
		CHECK(log_has("knows it by ECDSA-256 keys only"));
	}
	result_free(&r);
}

static void sc_rsa(struct ssh_pool *p)
{
	(void)p;
	struct ssh_opts o = opts();
	o.key_path = arg("rsa_key", NULL);
	o.key_explicit = true;
	struct ssh_pool *pr = ssh_pool_new(&o);
	char cmd[512];
	snprintf(cmd, sizeof cmd, "touch %s/rsa-marker", arg("dir", "/tmp"));
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(pr, "pod-a", conn_a, cmd, -1, NULL, NULL, &c) == -EACCES);
	CHECK(log_has("RSA key was refused"));
	CHECK(log_has("use an ed25519 key (ssh-keygen -t ed25519) or "
		      "libssh2 >= 1.11"));
	snprintf(cmd, sizeof cmd, "%s/rsa-marker", arg("dir", "/tmp"));
	CHECK(access(cmd, F_OK) != 0);
	ssh_pool_free(pr);
}

/* Starts a command on pod-a that prints "before" and sleeps 100 s, and
 * reads that first line through `cur`: a command known to be running.
 * NULL if it did not start. */
static struct ssh_cmd *start_sleeper(struct ssh_pool *p, struct ssh_cursor *cur)
{
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(p, "pod-a", conn_a, "echo before; sleep 100", -1, NULL,
		      NULL, &c) == 0);
	if (!c)
		return NULL;
	char buf[64];
	bool eof;
	size_t got = 0;
	while (got < 7 && ssh_cmd_wait(c, cur, 5))
		got += ssh_cmd_read(c, cur, buf + got, sizeof buf - got, &eof);
	CHECK(got == 7);
	return c;
}

static void sc_lost(struct ssh_pool *p)
{
	struct ssh_cursor cur = {0, false};
	struct ssh_cmd *c = start_sleeper(p, &cur);
	if (!c)
		return;
	action("kill");
	double t0 = now_monotonic();
	CHECK(ssh_cmd_wait_done(c, 5, NULL, NULL));
	printf("# lost_ms %.1f\n", (now_monotonic() - t0) * 1000);
	struct buf rest, e;
	buf_init(&rest);
	buf_init(&e);
	CHECK(read_all(c, &cur, &rest, 1));
	CHECK_STR(S(&rest), ""); /* the command's bytes alone: no marker */
	ssh_cmd_exit_text(c, &e);
	CHECK_STR(S(&e), "lost\n");
	CHECK(log_has("lost"));
	buf_free(&rest);
	buf_free(&e);
	ssh_cmd_put(c);

	/* While the pod is down: unreachable. */
	CHECK(ssh_run(p, "pod-a", conn_a, "true", -1, NULL, NULL, &c) ==
	      -EHOSTUNREACH);

	action("restart");
	struct result r;
	run_cmd(p, "pod-a", conn_a, "echo again", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "again\n");
	CHECK_STR(S(&r.exit), "0\n");
	result_free(&r);

	/* Killed while idle: the next command reconnects by itself. */
	action("kill");
	action("restart");
	run_cmd(p, "pod-a", conn_a, "echo third", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "third\n");
	result_free(&r);
}

static void sc_unreachable(struct ssh_pool *p)
{
	(void)p;
	struct ssh_opts o = opts();
	o.timeout = 1;
	struct ssh_pool *pu = ssh_pool_new(&o);
	char conn[256];
	struct ssh_cmd *c = NULL;
	struct {
		const char *name, *conn;
	} cases[] = {
	    {"closed port", NULL},
	    {"silent port", NULL},
	    {"no route", "root@192.0.2.1 -p 22"},
	};
	char closed[256], silent[256];
	make_conn(closed, arg("closed_port", "1"));
	make_conn(silent, arg("stall_port", "1"));
	cases[0].conn = closed;
	cases[1].conn = silent;
	for (size_t i = 0; i < 3; i++) {
		snprintf(conn, sizeof conn, "pod-%zu", i);
		double t0 = now_monotonic();
		int rc = ssh_run(pu, conn, cases[i].conn, "true", -1, NULL,
				 NULL, &c);
		double t = now_monotonic() - t0;
		printf("# %s: rc %d in %.0f ms\n", cases[i].name, rc, t * 1000);
		CHECK(rc == -EHOSTUNREACH);
		CHECK(t < 10); /* its 1 s timeout, not a hang */
		CHECK(c == NULL);
	}
	CHECK(log_has("connect to 127.0.0.1 port"));
	CHECK(log_has("timed out after 1s"));
	/* A connection string that is not one. */
	CHECK(ssh_run(pu, "pod-x", "root@ -p", "true", -1, NULL, NULL, &c) ==
	      -EIO);
	CHECK(ssh_run(pu, "pod-x", "root@h -p 99999", "true", -1, NULL, NULL,
		      &c) == -EIO);
	ssh_pool_free(pu);
}

/* Output goes to the caller's file as it arrives (the caller closed its
 * fd at once), whole, and ssh_cmd_read gives the same bytes; with -1, an
 * unlinked temporary file takes more than the old 64 MiB in-memory cap. */
static void sc_file(struct ssh_pool *p)
{
	struct buf want, path;
	buf_init(&want);
	buf_init(&path);
	for (int i = 1; i <= 750000; i++)
		buf_printf(&want, "%d\n", i);
	buf_printf(&path, "%s/out", arg("dir", "/tmp"));
	int fd = open(path.data, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(p, "pod-a", conn_a, "seq 1 750000", fd, NULL, NULL, &c) ==
	      0);
	close(fd);
	if (!c)
		goto out;
	CHECK(ssh_cmd_wait_done(c, 30, NULL, NULL));
	CHECK(ssh_cmd_total(c) == want.len);
	struct ssh_cursor cur = {0, false};
	struct buf got;
	buf_init(&got);
	CHECK(read_all(c, &cur, &got, 1));
	CHECK(got.len == want.len && !memcmp(got.data, want.data, want.len));
	buf_free(&got);
	ssh_cmd_put(c);
	/* The file itself, as the job store reads it. */
	FILE *f = fopen(path.data, "rb");
	CHECK(f != NULL);
	if (f) {
		char *data = xmalloc(want.len + 1);
		size_t n = fread(data, 1, want.len + 1, f);
		CHECK(n == want.len && !memcmp(data, want.data, want.len));
		free(data);
		fclose(f);
	}

	size_t big = (size_t)70 << 20;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "head -c %zu /dev/zero; echo end", big);
	CHECK(ssh_run(p, "pod-a", conn_a, cmd, -1, NULL, NULL, &c) == 0);
	if (!c)
		goto out;
	CHECK(ssh_cmd_wait_done(c, 60, NULL, NULL));
	CHECK(ssh_cmd_total(c) == big + 4);
	struct ssh_cursor end = {big, false};
	char tail[16];
	bool eof = false;
	size_t n = ssh_cmd_read(c, &end, tail, sizeof tail, &eof);
	CHECK(n == 4 && !memcmp(tail, "end\n", 4));
	CHECK(ssh_cmd_read(c, &end, tail, sizeof tail, &eof) == 0 && eof);
	printf("# total %llu\n", ssh_cmd_total(c));
	ssh_cmd_put(c);
out:
	buf_free(&path);
	buf_free(&want);
}

/* The output file's disk is full (dir= a small tmpfs): the command is
 * never stalled, ends with its own status, the loss is logged, and what
 * was written reads back. */
static void sc_full(struct ssh_pool *p)
{
	struct buf path;
	buf_init(&path);
	buf_printf(&path, "%s/out", arg("full", "/tmp"));
	int fd = open(path.data, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(fd >= 0);
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(p, "pod-a", conn_a,
		      "head -c 8000000 /dev/zero; echo after; exit 3", fd, NULL,
		      NULL, &c) == 0);
	close(fd);
	if (c) {
		CHECK(ssh_cmd_wait_done(c, 30, NULL, NULL));
		struct buf ex;
		buf_init(&ex);
		ssh_cmd_exit_text(c, &ex);
		CHECK_STR(S(&ex), "3\n");
		buf_free(&ex);
		unsigned long long total = ssh_cmd_total(c);
		printf("# written %llu\n", total);
		CHECK(total > 0 && total < 8000000);
		CHECK(log_has("cannot write a command's output to its file"));
		CHECK(log_has("bytes of a command's output were lost"));
		struct ssh_cursor cur = {0, false};
		struct buf got;
		buf_init(&got);
		CHECK(read_all(c, &cur, &got, 1));
		CHECK(got.len == total);
		buf_free(&got);
		ssh_cmd_put(c);
	}
	buf_free(&path);
}

/* Waits up to 10 s for the command's pgid. */
static long pgid_of(struct ssh_cmd *c)
{
	double end = now_monotonic() + 10;
	while (!ssh_cmd_pgid(c) && now_monotonic() < end)
		sleep_seconds(0.01);
	return ssh_cmd_pgid(c);
}

/* The output of a command that runs to its end, and its exit text. */
static void exit_of(struct ssh_cmd *c, struct buf *out, struct buf *ex)
{
	struct ssh_cursor cur = {0, false};
	CHECK(read_all(c, &cur, out, 20));
	ssh_cmd_exit_text(c, ex);
}

/* The wrapper's pid is the job's process group id, known to ssh_cmd_pgid,
 * and the output stays the script's alone; a signal goes to the whole
 * group and the exit text says it. */
/* An interruption check that says so at its third call. */
static bool third_call(void *arg)
{
	return ++*(int *)arg >= 3;
}

static void sc_signal(struct ssh_pool *p)
{
	struct ssh_cmd *c = NULL;
	struct buf out, ex;
	buf_init(&out);
	buf_init(&ex);
	/* $$ and the pgid of a child (cut), as the kernel says. */
	CHECK(ssh_run(p, "pod-a", conn_a,
		      "echo $$; cut -d' ' -f5 /proc/self/stat", -1, NULL, NULL,
		      &c) == 0);
	if (!c)
		return;
	exit_of(c, &out, &ex);
	CHECK_STR(S(&ex), "0\n");
	long pid = 0, pg = 0;
	CHECK(sscanf(S(&out), "%ld\n%ld\n", &pid, &pg) == 2);
	printf("# pgid %ld\n", pg);
	printf("# ssh_cmd_pgid %ld\n", ssh_cmd_pgid(c));
	CHECK(pid > 0 && pid == pg && ssh_cmd_pgid(c) == pg);
	CHECK(!strstr(S(&out), "primefs"));
	CHECK(ssh_cmd_signal(p, c, "TERM", NULL, NULL) == -ESRCH); /* ended */
	ssh_cmd_put(c);
	buf_free(&out);
	buf_free(&ex);

	/* TERM ends `sleep 60`. */
	CHECK(ssh_run(p, "pod-a", conn_a, "sleep 60", -1, NULL, NULL, &c) == 0);
	if (!c)
		return;
	CHECK(pgid_of(c) > 0);
	CHECK(ssh_cmd_signal(p, c, "NOPE", NULL, NULL) == -EINVAL);
	CHECK(ssh_cmd_signal(p, c, "SIGFOO", NULL, NULL) == -EINVAL);
	CHECK(!ssh_cmd_done(c));
	/* A wait for it ends when its interruption check says so. */
	int calls = 0;
	CHECK(ssh_cmd_wait_done(c, 60, third_call, &calls) == -EINTR);
	CHECK(calls == 3 && !ssh_cmd_done(c));
	double t0 = now_monotonic();
	CHECK(ssh_cmd_signal(p, c, "TERM", NULL, NULL) == 0);
	CHECK(ssh_cmd_wait_done(c, 10, NULL, NULL)); /* not a hang */
	printf("# term_s %.3f\n", now_monotonic() - t0);
	buf_init(&ex);
	ssh_cmd_exit_text(c, &ex);
	CHECK_STR(S(&ex), "signal TERM\n");
	buf_free(&ex);
	ssh_cmd_put(c);

	/* A background child dies with the shell: the whole group. */
	CHECK(ssh_run(p, "pod-a", conn_a, "sleep 60 & echo $!; sleep 60; wait",
		      -1, NULL, NULL, &c) == 0);
	if (!c)
		return;
	struct ssh_cursor cur = {0, false};
	char line[64] = "";
	double end = now_monotonic() + 10;
	size_t got = 0;
	while (!memchr(line, '\n', got) && got < sizeof line - 1 &&
	       now_monotonic() < end) {
		bool eof;
		got += ssh_cmd_read(c, &cur, line + got, sizeof line - 1 - got,
				    &eof);
		if (!memchr(line, '\n', got))
			ssh_cmd_wait(c, &cur, 1);
	}
	long child = atol(line);
	CHECK(child > 0);
	CHECK(ssh_cmd_signal(p, c, "SIGTERM", NULL, NULL) == 0);
	CHECK(ssh_cmd_wait_done(c, 10, NULL, NULL));
	buf_init(&ex);
	ssh_cmd_exit_text(c, &ex);
	CHECK_STR(S(&ex), "signal TERM\n");
	buf_free(&ex);
	ssh_cmd_put(c);
	/* Gone, or a zombie waiting for init. */
	char check[256];
	snprintf(
	    check, sizeof check,
	    "for i in 1 2 3 4 5 6 7 8 9 10; do "
	    "s=$(cut -d' ' -f3 /proc/%ld/stat 2>/dev/null); "
	    "if [ -z \"$s\" ] || [ \"$s\" = Z ]; then echo gone; exit; fi; "
	    "sleep 0.2; done; echo alive",
	    child);
	struct result r;
	run_cmd(p, "pod-a", conn_a, check, &r);
	CHECK_STR(S(&r.out), "gone\n");
	result_free(&r);
}

static void sc_reuse(struct ssh_pool *p)
{
	for (int i = 0; i < 10; i++) {
		struct result r;
		char cmd[64], want[64];
		snprintf(cmd, sizeof cmd, "echo run%d", i);
		snprintf(want, sizeof want, "run%d\n", i);
		run_cmd(p, "pod-a", conn_a, cmd, &r);
		CHECK(r.rc == 0);
		CHECK_STR(S(&r.out), want);
		result_free(&r);
	}
}

struct reader {
	struct ssh_cmd *c;
	unsigned long long bytes, zeros;
	bool marker;
};

static void *reader_main(void *arg)
{
	struct reader *r = arg;
	struct ssh_cursor cur = {0, false};
	static char buf[1 << 17];
	for (;;) {
		bool eof = false;
		size_t n = ssh_cmd_read(r->c, &cur, buf, sizeof buf, &eof);
		if (n) {
			r->bytes += n;
			if (buf[0] == 0 && buf[n - 1] == 0)
				r->zeros += n;
			continue;
		}
		if (eof)
			break;
		ssh_cmd_wait(r->c, &cur, 5);
	}
	r->marker = cur.marker_done;
	return NULL;
}

/* One run of cmd, read by a reader that keeps up; seconds. */
static double timed_run(struct ssh_pool *p, const char *cmd,
			unsigned long long size)
{
	double t0 = now_monotonic();
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(p, "pod-a", conn_a, cmd, -1, NULL, NULL, &c) == 0);
	if (!c)
		return 1e9;
	struct reader r = {c, 0, 0, false};
	if (atoi(arg("after", "0")))
		ssh_cmd_wait_done(c, 60, NULL, NULL); /* the I/O thread alone */
	reader_main(&r);
	double t = now_monotonic() - t0;
	if (r.bytes != size || r.marker)
		printf("# reader got %llu of %llu bytes (%llu zeros)\n",
		       r.bytes, size, r.zeros);
	CHECK(r.bytes == size);
	CHECK(r.zeros == size);
	CHECK(!r.marker);
	ssh_cmd_put(c);
	return t;
}

static void sc_throughput(struct ssh_pool *p)
{
	unsigned long long size = strtoull(arg("bytes", "268435456"), NULL, 10);
	int runs = atoi(arg("runs", "1"));
	char cmd[128];
	snprintf(cmd, sizeof cmd, "head -c %llu /dev/zero", size);
	struct ssh_opts o = opts();
	/* Cold: a new pool, so connect and authentication count, as they do
	 * for `ssh host cmd`. Then warm: the session reused, as primefs
	 * does. */
	p = ssh_pool_new(&o);
	double t = timed_run(p, cmd, size);
	printf("# cold_s %.3f\n", t);
	for (int i = 0; i < runs; i++) {
		t = timed_run(p, cmd, size);
		printf("# warm_s %.3f\n", t);
		printf("# warm_MBps %.1f\n", size / t / 1e6);
	}
	ssh_pool_free(p);
}

/* Time of a trivial command on a warm session: ssh_run() to exit status. */
static void sc_latency(struct ssh_pool *p)
{
	int n = atoi(arg("runs", "20"));
	double best = 1e9, sum = 0;
	for (int i = 0; i <= n; i++) {
		double t0 = now_monotonic();
		struct result r;
		run_cmd(p, "pod-a", conn_a, "true", &r);
		double t = now_monotonic() - t0;
		CHECK(r.rc == 0 && r.ended);
		result_free(&r);
		if (i == 0) {
			printf("# connect_and_true_ms %.2f\n", t * 1000);
			continue;
		}
		printf("# true_ms %.2f\n", t * 1000);
		sum += t;
		if (t < best)
			best = t;
	}
	printf("# true_best_ms %.2f\n# true_mean_ms %.2f\n", best * 1000,
	       sum / n * 1000);
}

static void sc_agent(struct ssh_pool *p)
{
	(void)p;
	/* No key file: the agent's key (SSH_AUTH_SOCK from the driver). */
	struct ssh_opts o = opts();
	o.key_path = NULL;
	o.key_explicit = false;
	struct ssh_pool *pa = ssh_pool_new(&o);
	struct result r;
	run_cmd(pa, "pod-a", conn_a, "echo agent", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "agent\n");
	result_free(&r);
	ssh_pool_free(pa);
	/* An explicit key is the only one tried, agent or not. */
	o.key_path = arg("other_key", NULL);
	o.key_explicit = true;
	pa = ssh_pool_new(&o);
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(pa, "pod-a", conn_a, "true", -1, NULL, NULL, &c) ==
	      -EACCES);
	CHECK(log_has("refused (tried key "));
	ssh_pool_free(pa);
	/* Not explicit: the agent first, then the (unauthorized) file. */
	o.key_explicit = false;
	pa = ssh_pool_new(&o);
	run_cmd(pa, "pod-a", conn_a, "echo agent2", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "agent2\n");
	result_free(&r);
	ssh_pool_free(pa);
}

struct watch_count {
	pthread_mutex_t lock;
	int calls;
};

static void on_change(void *arg)
{
	struct watch_count *w = arg;
	pthread_mutex_lock(&w->lock);
	w->calls++;
	pthread_mutex_unlock(&w->lock);
}

static void sc_watch(struct ssh_pool *p)
{
	struct watch_count w = {PTHREAD_MUTEX_INITIALIZER, 0};
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(p, "pod-a", conn_a, "echo a; sleep 0.3; echo b", -1, NULL,
		      NULL, &c) == 0);
	if (!c)
		return;
	int id = ssh_cmd_watch(c, on_change, &w);
	CHECK(id > 0);
	CHECK(ssh_cmd_wait_done(c, 10, NULL, NULL));
	sleep_seconds(0.05);
	ssh_cmd_unwatch(c, id);
	pthread_mutex_lock(&w.lock);
	int calls = w.calls;
	pthread_mutex_unlock(&w.lock);
	printf("# watch_calls %d\n", calls);
	CHECK(calls >= 2); /* "b", and the end */
	ssh_cmd_put(c);

	/* forget: the pod is gone, its running command ends. */
	CHECK(ssh_run(p, "pod-a", conn_a, "sleep 30", -1, NULL, NULL, &c) == 0);
	if (!c)
		return;
	ssh_pool_forget(p, "pod-a");
	CHECK(ssh_cmd_wait_done(c, 5, NULL, NULL));
	struct buf e;
	buf_init(&e);
	ssh_cmd_exit_text(c, &e);
	CHECK_STR(S(&e), "lost\n");
	buf_free(&e);
	ssh_cmd_put(c);
	struct result r;
	run_cmd(p, "pod-a", conn_a, "echo back", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "back\n");
	result_free(&r);
}

/* A provider recycles an address: a new pod (another id, another host key)
 * on the port an old pod had is accepted; the old pod's id with the new key
 * is refused, nothing sent. */
static void sc_recycle(struct ssh_pool *p)
{
	struct result r;
	run_cmd(p, "pod-old", conn_a, "echo old", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "old\n");
	result_free(&r);
	action("recycle"); /* another sshd, a new host key, the same port */
	run_cmd(p, "pod-new", conn_a, "echo new", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "new\n");
	result_free(&r);
	CHECK(log_has("learned host key of pod pod-new"));
	char cmd[512];
	snprintf(cmd, sizeof cmd, "touch %s/recycle-marker",
		 arg("dir", "/tmp"));
	struct ssh_cmd *c = NULL;
	CHECK(ssh_run(p, "pod-old", conn_a, cmd, -1, NULL, NULL, &c) ==
	      -EACCES);
	CHECK(c == NULL);
	CHECK(log_has("HOST KEY CHANGED for pod pod-old"));
}

static double interrupt_at;

static bool interrupt_later(void *arg)
{
	(void)arg;
	return now_monotonic() >= interrupt_at;
}

/* A command given up on (interrupted) while its channel opens on a frozen
 * pod never runs once the pod wakes: the driver counts sshd's "Starting
 * session" lines and looks for the marker. */
static void sc_abandon(struct ssh_pool *p)
{
	struct result r;
	run_cmd(p, "pod-a", conn_a, "true", &r);
	CHECK(r.rc == 0);
	result_free(&r);
	action("freeze");
	char cmd[512];
	snprintf(cmd, sizeof cmd, "touch %s/abandon-marker",
		 arg("dir", "/tmp"));
	struct ssh_cmd *c = NULL;
	interrupt_at = now_monotonic() + 0.5;
	CHECK(ssh_run(p, "pod-a", conn_a, cmd, -1, interrupt_later, NULL, &c) ==
	      -EINTR);
	CHECK(c == NULL);
	CHECK(log_has("it will not run"));
	action("thaw");
	run_cmd(p, "pod-a", conn_a, "echo after", &r);
	CHECK(r.rc == 0);
	CHECK_STR(S(&r.out), "after\n");
	result_free(&r);
}

/* The pod freezes (SIGSTOP: the connection stays open and its kernel
 * acknowledges our packets) while a command runs: the session is found
 * dead after some keepalive intervals and the command ends as lost. */
static void sc_frozen(struct ssh_pool *p)
{
	struct ssh_cursor cur = {0, false};
	struct ssh_cmd *c = start_sleeper(p, &cur);
	if (!c)
		return;
	action("freeze");
	double ka = atof(arg("keepalive", "15"));
	double t0 = now_monotonic();
	CHECK(ssh_cmd_wait_done(c, 3 * (ka < 2 ? 2 : ka) + 10, NULL, NULL));
	printf("# lost_s %.1f\n", now_monotonic() - t0);
	struct buf e;
	buf_init(&e);
	ssh_cmd_exit_text(c, &e);
	CHECK_STR(S(&e), "lost\n");
	CHECK(log_has("no answer from the pod"));
	buf_free(&e);
	ssh_cmd_put(c);
	action("thaw");
}

/* The pod's session dies while a command's channel open is under way on it
 * (frozen, then its processes killed; the listener lives on): it fails
 * with the command not sent, and ssh_run() retries it on a new session,
 * which must not be the dying one (it used to be, when the retry came
 * before the old session was marked dead: "connection lost twice"). Some
 * rounds, as the window is narrow. */
static void sc_redial(struct ssh_pool *p)
{
	int rounds = atoi(arg("runs", "10"));
	for (int i = 0; i < rounds; i++) {
		struct result r;
		run_cmd(p, "pod-a", conn_a, "echo warm", &r);
		CHECK(r.rc == 0);
		result_free(&r);
		action("freeze");
		struct bg_run b = {p, "pod-a", conn_a, "echo after",
				   0, 0,       NULL,   false};
		pthread_t th;
		pthread_create(&th, NULL, bg_run_main, &b);
		sleep_seconds(0.2); /* the channel open is sent, unanswered */
		action("drop");
		pthread_join(th, NULL);
		CHECK(b.rc == 0);
		if (b.rc)
			printf("# round %d failed: %d\n", i, b.rc);
		if (!b.c)
			continue;
		struct ssh_cursor cur = {0, false};
		buf_init(&r.out);
		buf_init(&r.exit);
		CHECK(read_all(b.c, &cur, &r.out, 10));
		ssh_cmd_exit_text(b.c, &r.exit);
		CHECK_STR(S(&r.out), "after\n");
		CHECK_STR(S(&r.exit), "0\n");
		result_free(&r);
		ssh_cmd_put(b.c);
	}
	CHECK(!log_has("connection lost twice"));
}

static const struct {
	const char *name;
	void (*fn)(struct ssh_pool *p);
} scenarios[] = {
    {"basic", sc_basic},
    {"interleave", sc_interleave},
    {"big", sc_big},
    {"stream", sc_stream},
    {"concurrent", sc_concurrent},
    {"pods", sc_pods},
    {"hostkey", sc_hostkey},
    {"known", sc_known},
    {"rsa", sc_rsa},
    {"lost", sc_lost},
    {"unreachable", sc_unreachable},
    {"file", sc_file},
    {"full", sc_full},
    {"signal", sc_signal},
    {"reuse", sc_reuse},
    {"throughput", sc_throughput},
    {"latency", sc_latency},
    {"agent", sc_agent},
    {"watch", sc_watch},
    {"recycle", sc_recycle},
    {"abandon", sc_abandon},
    {"frozen", sc_frozen},
    {"redial", sc_redial},
};

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s SCENARIO key=value...\n", argv[0]);
		return 2;
	}
	n_args = argc - 2;
	args = argv + 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	log_init(1000, true);
	make_conn(conn_a, arg("port", "22"));
	make_conn(conn_b, arg("port_b", "22"));
	struct ssh_opts o = opts();
	struct ssh_pool *p = ssh_pool_new(&o);
	size_t i;
	for (i = 0; i < sizeof scenarios / sizeof scenarios[0]; i++)
		if (!strcmp(scenarios[i].name, argv[1])) {
			scenarios[i].fn(p);
			break;
		}
	if (i == sizeof scenarios / sizeof scenarios[0]) {
		fprintf(stderr, "unknown scenario %s\n", argv[1]);
		return 2;
	}
	ssh_pool_free(p);
	log_shutdown();
	return t_done();
}
