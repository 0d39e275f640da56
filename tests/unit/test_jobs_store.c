/* test_jobs_store.c — the job store's records on disk, without SSH: what
 * a second jobs_new (a remount) finds, numbering across it, named jobs,
 * the cap on outputs, corrupt and hostile records, and reading ended
 * jobs. Live jobs are tested at mount level (tests/test_jobs.py). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "jobs.h"
#include "log.h"
#include "t.h"

static char root[] = "/tmp/primefs-jobs-XXXXXX";

static void put_file(const char *path, const char *data, size_t len)
{
	FILE *f = fopen(path, "w");
	if (!f)
		return;
	fwrite(data, 1, len, f);
	fclose(f);
}

static char *get_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (!f)
		return NULL;
	struct buf b;
	buf_init(&b);
	char tmp[4096];
	size_t n;
	while ((n = fread(tmp, 1, sizeof tmp, f)) > 0)
		buf_add(&b, tmp, n);
	fclose(f);
	return buf_steal(&b);
}

static bool exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

/* A record as an earlier mount would have left it. */
static void record(const char *dir, const char *pod, const char *name,
		   const char *state, long long created, long long started,
		   long long ended, const char *exit_text, const char *out)
{
	char p[512];
	snprintf(p, sizeof p, "%s/%s", dir, pod);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/%s/%s", dir, pod, name);
	mkdir(p, 0700);
	snprintf(p, sizeof p, "%s/%s/%s/out", dir, pod, name);
	put_file(p, out, strlen(out));
	snprintf(p, sizeof p, "%s/%s/%s/cmd", dir, pod, name);
	put_file(p, "echo hi\n", 8);
	char meta[1024];
	snprintf(meta, sizeof meta,
		 "{\"pod_id\":\"%s\",\"name\":\"%s\",\"state\":\"%s\","
		 "\"created\":%lld,\"started\":%lld,\"ended\":%lld%s%s%s}",
		 pod, name, state, created, started, ended,
		 exit_text ? ",\"exit\":\"" : "", exit_text ? exit_text : "",
		 exit_text ? "\"" : "");
	snprintf(p, sizeof p, "%s/%s/%s/meta", dir, pod, name);
	put_file(p, meta, strlen(meta));
}

static int add_name(void *ctx, const char *name)
{
	struct buf *b = ctx;
	buf_printf(b, "%s,", name);
	return 0;
}

static char *list(struct jobs *j, const char *pod)
{
	struct buf b;
	buf_init(&b);
	jobs_list(j, pod, add_name, &b);
	buf_addc(&b, '\0');
	return buf_steal(&b);
}

static char *read_all(struct job *jb, bool *eof_seen)
{
	struct buf b;
	buf_init(&b);
	unsigned long long off = 0;
	char tmp[3];
	*eof_seen = false;
	for (int i = 0; i < 100000; i++) {
		bool eof;
		ssize_t n = job_read(jb, off, tmp, sizeof tmp, &eof);
		if (n < 0)
			break;
		if (n == 0) {
			*eof_seen = eof;
			break;
		}
		buf_add(&b, tmp, (size_t)n);
		off += (unsigned long long)n;
	}
	buf_addc(&b, '\0');
	return buf_steal(&b);
}

static struct jobs *open_store(const char *dir, unsigned long long keep)
{
	struct jobs_opts o = {.dir = dir, .keep_bytes = keep, .runs = NULL};
	return jobs_new(&o);
}

static void test_reload(void)
{
	char dir[512];
	snprintf(dir, sizeof dir, "%s/reload", root);
	struct jobs *j = open_store(dir, 1 << 20);
	CHECK(j != NULL);
	CHECK(exists(dir));
	CHECK(!jobs_pod_has(j, "pod1"));
	CHECK(jobs_latest(j, "pod1") == NULL);
	jobs_free(j);

	record(dir, "pod1", "1", "exited", 100, 100, 110, "0\\n", "one\n");
	record(dir, "pod1", "2", "exited", 120, 120, 130, "signal KILL\\n",
	       "two\n");
	record(dir, "pod1", "3", "running", 140, 140, 0, NULL, "three\n");
	record(dir, "pod1", "train", "exited", 125, 125, 126, "3\\n", "tr\n");
	record(dir, "pod1", "later", "waiting", 200, 0, 0, NULL, "");
	j = open_store(dir, 1 << 20);
	CHECK(j != NULL);
	CHECK(jobs_pod_has(j, "pod1"));
	char *names = list(j, "pod1");
	CHECK_STR(names, "1,2,3,later,train,");
	free(names);

	struct job *jb = jobs_get(j, "pod1", "1");
	CHECK(jb != NULL);
	if (jb) {
		CHECK(job_state(jb) == JOB_EXITED);
		CHECK(job_started(jb) == 100 && job_ended(jb) == 110);
		CHECK(job_size(jb) == 4);
		bool eof;
		char *out = read_all(jb, &eof);
		CHECK_STR(out, "one\n");
		CHECK(eof);
		free(out);
		struct buf b;
		buf_init(&b);
		CHECK(job_exit_text(jb, &b));
		CHECK_STR(b.data, "0\n");
		buf_reset(&b);
		job_cmd(jb, &b);
		buf_addc(&b, '\0');
		CHECK_STR(b.data, "echo hi\n");
		buf_free(&b);
		CHECK(job_wait(jb, 4, 0));
		CHECK(job_wait_done(jb, 0));
		char tmp[8];
		CHECK(job_read(jb, 100, tmp, sizeof tmp, &eof) == 0 && eof);
		CHECK(job_signal(j, jb, "TERM", NULL, NULL) == -ESRCH);
		job_put(jb);
	}
	jb = jobs_get(j, "pod1", "2");
	if (jb) {
		struct buf b;
		buf_init(&b);
		CHECK(job_exit_text(jb, &b));
		CHECK_STR(b.data, "signal KILL\n");
		buf_free(&b);
		job_put(jb);
	}
	/* Running when its mount ended: lost now, on disk too. */
	jb = jobs_get(j, "pod1", "3");
	CHECK(jb && job_state(jb) == JOB_LOST);
	if (jb) {
		struct buf b;
		buf_init(&b);
		CHECK(job_exit_text(jb, &b));
		CHECK_STR(b.data, "lost\n");
		buf_free(&b);
		CHECK(job_ended(jb) != 0);
		bool eof;
		char *out = read_all(jb, &eof);
		CHECK_STR(out, "three\n");
		CHECK(eof);
		free(out);
		job_put(jb);
	}
	char p[600];
	snprintf(p, sizeof p, "%s/pod1/3/meta", dir);
	char *meta = get_file(p);
	CHECK(meta && strstr(meta, "\"state\":\"lost\""));
	free(meta);
	/* A named job not yet started stays so; it is nobody's latest. */
	jb = jobs_get(j, "pod1", "later");
	CHECK(jb && job_state(jb) == JOB_WAITING);
	if (jb) {
		CHECK(job_started(jb) == 0);
		struct buf b;
		buf_init(&b);
		CHECK(!job_exit_text(jb, &b));
		CHECK(b.len == 0);
		job_cmd(jb, &b);
		CHECK(b.len == 0);
		buf_free(&b);
		bool eof;
		char tmp[4];
		CHECK(job_read(jb, 0, tmp, sizeof tmp, &eof) == 0 && !eof);
		CHECK(!job_wait(jb, 0, 0.05));
		CHECK(!job_wait_done(jb, 0.05));
		job_put(jb);
	}
	jb = jobs_latest(j, "pod1");
	CHECK(jb && !strcmp(job_name(jb), "3"));
	job_put(jb);
	CHECK(jobs_get(j, "pod1", "latest") == NULL);
	CHECK(jobs_get(j, "pod2", "1") == NULL);
	/* Busy: none runs; one ended after `since`. */
	CHECK(!jobs_busy(j, "pod1", time(NULL) + 5));
	CHECK(jobs_busy(j, "pod1", 105));

	/* Numbering goes on after the highest on record. Without SSH a run
	 * fails, leaving no record and no job. */
	jb = NULL;
	CHECK(jobs_run(j, "pod1", "echo\n", 5, NULL, NULL, &jb) == -ENOTCONN);
	CHECK(jb == NULL);
	names = list(j, "pod1");
	CHECK_STR(names, "1,2,3,later,train,");
	free(names);
	snprintf(p, sizeof p, "%s/pod1/4", dir);
	CHECK(!exists(p));
	jobs_free(j);

	/* Remount: the same again; the lost one stays lost. */
	j = open_store(dir, 1 << 20);
	names = list(j, "pod1");
	CHECK_STR(names, "1,2,3,later,train,");
	free(names);
	jb = jobs_get(j, "pod1", "3");
	CHECK(jb && job_state(jb) == JOB_LOST);
	job_put(jb);

	/* The pod is gone: its records stay (history shows them). */
	jobs_pod_gone(j, "pod1");
	names = list(j, "pod1");
	CHECK_STR(names, "1,2,3,later,train,");
	free(names);
	CHECK(jobs_pod_has(j, "pod1"));

	/* rmdir of a job: record gone, and gone after a remount too. */
	CHECK(jobs_remove(j, "pod1", "2") == 0);
	CHECK(jobs_remove(j, "pod1", "2") == -ENOENT);
	CHECK(jobs_remove(j, "pod1", "nope") == -ENOENT);
	snprintf(p, sizeof p, "%s/pod1/2", dir);
	CHECK(!exists(p));
	jobs_free(j);
	j = open_store(dir, 1 << 20);
	names = list(j, "pod1");
	CHECK_STR(names, "1,3,later,train,");
	free(names);
	jobs_free(j);
}

static void test_named(void)
{
	char dir[512], p[600];
	snprintf(dir, sizeof dir, "%s/named", root);
	struct jobs *j = open_store(dir, 1 << 20);
	CHECK(jobs_create(j, "pod1", "train") == 0);
	CHECK(jobs_create(j, "pod1", "train") == -EEXIST);
	CHECK(jobs_create(j, "pod1", "42") == -EINVAL);
	CHECK(jobs_create(j, "pod1", "latest") == -EINVAL);
	CHECK(jobs_create(j, "pod1", ".hidden") == -EINVAL);
	CHECK(jobs_create(j, "pod1", "..") == -EINVAL);
	CHECK(jobs_create(j, "pod1", "a/b") == -EINVAL);
	CHECK(jobs_create(j, "pod1", "") == -EINVAL);
	CHECK(jobs_create(j, "pod1", "sp ace") == -EINVAL);
	CHECK(jobs_create(j, "..", "x") == -ENOENT);
	CHECK(jobs_create(j, "a/b", "x") == -ENOENT);
	CHECK(jobs_create(j, ".", "x") == -ENOENT);
	CHECK(jobs_create(j, "", "x") == -ENOENT);
	snprintf(p, sizeof p, "%s/x", root);
	CHECK(!exists(p));
	CHECK(jobs_create(j, "pod2", "train") == 0); /* per pod */
	char *names = list(j, "pod1");
	CHECK_STR(names, "train,");
	free(names);
	struct job *jb = jobs_get(j, "pod1", "train");
	CHECK(jb && job_state(jb) == JOB_WAITING);
	if (jb) {
		/* Without SSH it cannot start; it stays waiting. */
		CHECK(jobs_start(j, jb, "echo\n", 5, NULL, NULL) == -ENOTCONN);
		CHECK(job_state(jb) == JOB_WAITING);
		job_put(jb);
	}
	CHECK(jobs_latest(j, "pod1") == NULL);
	CHECK(jobs_run(j, "../x", "echo\n", 5, NULL, NULL, &jb) == -ENOENT);
	/* rmdir of a waiting job: its readers see it end (lost). */
	CHECK(jobs_create(j, "pod1", "gone") == 0);
	jb = jobs_get(j, "pod1", "gone");
	CHECK(jb && !job_wait_done(jb, 0));
	CHECK(jobs_remove(j, "pod1", "gone") == 0);
	if (jb) {
		CHECK(job_wait_done(jb, 0));
		CHECK(job_state(jb) == JOB_LOST);
		bool eof;
		char tmp[4];
		CHECK(job_read(jb, 0, tmp, sizeof tmp, &eof) == 0 && eof);
		job_put(jb);
	}
	CHECK(jobs_get(j, "pod1", "gone") == NULL);
	jobs_free(j);
	snprintf(p, sizeof p, "%s/pod1/train/meta", dir);
	char *meta = get_file(p);
	CHECK(meta && strstr(meta, "\"state\":\"waiting\""));
	free(meta);
	j = open_store(dir, 1 << 20);
	jb = jobs_get(j, "pod1", "train");
	CHECK(jb && job_state(jb) == JOB_WAITING);
	job_put(jb);
	CHECK(jobs_create(j, "pod1", "train") == -EEXIST);
	jobs_free(j);
}

static void test_cap(void)
{
	char dir[512], p[600];
	snprintf(dir, sizeof dir, "%s/cap", root);
	mkdir(dir, 0700);
	char big[1001];
	memset(big, 'x', 1000);
	big[1000] = '\0';
	/* Oldest by end time: 2 (ended 20), then 1 (30), then 3 (40). */
	record(dir, "podA", "1", "exited", 1, 1, 30, "0\\n", big);
	record(dir, "podA", "2", "exited", 1, 1, 20, "0\\n", big);
	record(dir, "podB", "1", "exited", 1, 1, 40, "0\\n", big);
	record(dir, "podB", "w", "waiting", 1, 0, 0, NULL, "");
	struct jobs *j = open_store(dir, 2100);
	CHECK(j != NULL);
	snprintf(p, sizeof p, "%s/podA/2/out", dir);
	char *out = get_file(p);
	CHECK(out && !*out); /* emptied: no text of primefs's in it */
	free(out);
	snprintf(p, sizeof p, "%s/podA/1/out", dir);
	out = get_file(p);
	CHECK(out && strlen(out) == 1000);
	free(out);
	snprintf(p, sizeof p, "%s/podA/2/meta", dir);
	out = get_file(p);
	CHECK(out && strstr(out, "\"dropped\":true"));
	free(out);
	struct buf lg;
	buf_init(&lg);
	log_render(&lg);
	buf_addc(&lg, '\0');
	CHECK(strstr(lg.data, "podA/2/out: output dropped (1000 bytes)"));
	CHECK(!strstr(lg.data, "podA/1/out: output dropped"));
	buf_free(&lg);
	jobs_free(j);

	/* A smaller cap: the next oldest goes, then the next; the one
	 * already dropped is not dropped again. */
	j = open_store(dir, 1200);
	snprintf(p, sizeof p, "%s/podA/1/out", dir);
	out = get_file(p);
	CHECK(out && !*out);
	free(out);
	snprintf(p, sizeof p, "%s/podB/1/out", dir);
	out = get_file(p);
	CHECK(out && strlen(out) == 1000);
	free(out);
	struct job *jb = jobs_get(j, "podA", "1");
	if (jb) {
		bool eof;
		char *got = read_all(jb, &eof);
		CHECK(got && !*got);
		CHECK(eof);
		CHECK(job_size(jb) == 0);
		CHECK(job_state(jb) == JOB_EXITED);
		struct buf ex;
		buf_init(&ex);
		CHECK(job_exit_text(jb, &ex) && !strcmp(ex.data, "0\n"));
		buf_free(&ex);
		free(got);
		job_put(jb);
	}
	jobs_free(j);
	j = open_store(dir, 0);
	snprintf(p, sizeof p, "%s/podB/1/out", dir);
	out = get_file(p);
	CHECK(out && !*out);
	free(out);
	jb = jobs_get(j, "podB", "w"); /* waiting: untouched, still there */
	CHECK(jb && job_state(jb) == JOB_WAITING);
	job_put(jb);
	jobs_free(j);
}

static void test_corrupt(void)
{
	char dir[512], p[600];
	snprintf(dir, sizeof dir, "%s/corrupt", root);
	mkdir(dir, 0700);
	record(dir, "pod1", "1", "exited", 1, 1, 2, "0\\n", "ok\n");
	/* Not JSON; JSON of the wrong shape; another job's; a bad state;
	 * no times; a hostile exit text; no meta at all; a huge one. */
	record(dir, "pod1", "2", "exited", 1, 1, 2, "0\\n", "");
	snprintf(p, sizeof p, "%s/pod1/2/meta", dir);
	put_file(p, "{\"pod_id\":", 10);
	record(dir, "pod1", "3", "exited", 1, 1, 2, "0\\n", "");
	snprintf(p, sizeof p, "%s/pod1/3/meta", dir);
	put_file(p, "[1,2,3]", 7);
	record(dir, "pod1", "5", "exited", 1, 1, 2, "0\\n", "");
	snprintf(p, sizeof p, "%s/pod1/5/meta", dir);
	put_file(p,
		 "{\"pod_id\":\"pod1\",\"name\":\"../../x\",\"state\":"
		 "\"exited\",\"created\":1,\"started\":1,\"ended\":2}",
		 80);
	record(dir, "pod1", "6", "dancing", 1, 1, 2, "0\\n", "");
	record(dir, "pod1", "7", "exited", 1, 1, 2, "0\\n", "");
	snprintf(p, sizeof p, "%s/pod1/7/meta", dir);
	put_file(p,
		 "{\"pod_id\":\"pod1\",\"name\":\"7\",\"state\":\"exited\","
		 "\"created\":\"soon\",\"started\":1,\"ended\":2}",
		 79);
	record(dir, "pod1", "8", "exited", 1, 1, 2, "\\u001b[2J\\n", "");
	snprintf(p, sizeof p, "%s/pod1/9", dir);
	mkdir(p, 0700);
	record(dir, "pod1", "10", "exited", 1, 1, 2, "0\\n", "");
	snprintf(p, sizeof p, "%s/pod1/10/meta", dir);
	{
		char huge[10000];
		memset(huge, ' ', sizeof huge);
		put_file(p, huge, sizeof huge);
	}
	/* Hostile names on disk: a numbered-looking "01", a hidden one, a
	 * "latest"; a hidden pod directory; a stray file. */
	record(dir, "pod1", "01", "exited", 1, 1, 2, "0\\n", "");
	record(dir, "pod1", ".h", "exited", 1, 1, 2, "0\\n", "");
	record(dir, "pod1", "latest", "exited", 1, 1, 2, "0\\n", "");
	record(dir, ".pod", "1", "exited", 1, 1, 2, "0\\n", "");
	snprintf(p, sizeof p, "%s/stray", dir);
	put_file(p, "x", 1);
	/* Links: a job directory and a pod directory that point elsewhere. */
	char target[600];
	snprintf(target, sizeof target, "%s/pod1/1", dir);
	snprintf(p, sizeof p, "%s/pod1/12", dir);
	CHECK(symlink(target, p) == 0);
	snprintf(target, sizeof target, "%s/pod1", dir);
	snprintf(p, sizeof p, "%s/podlink", dir);
	CHECK(symlink(target, p) == 0);
	snprintf(p, sizeof p, "%s/pod1/stray", dir);
	put_file(p, "x", 1);

	struct jobs *j = open_store(dir, 1 << 20);
	CHECK(j != NULL);
	char *names = list(j, "pod1");
	CHECK_STR(names, "1,8,");
	free(names);
	CHECK(!jobs_pod_has(j, ".pod"));
	CHECK(!jobs_pod_has(j, "podlink"));
	struct job *jb = jobs_get(j, "pod1", "8");
	if (jb) {
		struct buf b;
		buf_init(&b);
		CHECK(job_exit_text(jb, &b));
		CHECK_STR(b.data, "lost\n");
		buf_free(&b);
		job_put(jb);
	}
	struct buf lg;
	buf_init(&lg);
	log_render(&lg);
	buf_addc(&lg, '\0');
	CHECK(strstr(lg.data, "skipped job 2: meta is not JSON"));
	CHECK(strstr(lg.data, "skipped job 9: no readable meta"));
	CHECK(strstr(lg.data, "skipped 12: not a directory"));
	CHECK(strstr(lg.data, "skipped stray: not a directory"));
	buf_free(&lg);
	/* No number on record is reused: the next would be 13. The record
	 * that failed to start is gone again, the skipped ones stay. */
	CHECK(jobs_run(j, "pod1", "x", 1, NULL, NULL, &jb) == -ENOTCONN);
	snprintf(p, sizeof p, "%s/pod1/10", dir);
	CHECK(exists(p));
	snprintf(p, sizeof p, "%s/pod1/13", dir);
	CHECK(!exists(p));
	jobs_free(j);
	/* A directory that cannot be made: NULL, no crash. */
	snprintf(p, sizeof p, "%s/stray/jobs", dir);
	CHECK(open_store(p, 0) == NULL);
}

int main(void)
{
	if (!mkdtemp(root)) {
		perror("mkdtemp");
		return 1;
	}
	log_init(1000, false);
	test_reload();
	test_named();
	test_cap();
	test_corrupt();
	char cmd[600];
	snprintf(cmd, sizeof cmd, "rm -rf %s", root);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", root);
	return t_done();
}
