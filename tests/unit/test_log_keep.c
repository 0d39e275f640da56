/* test_log_keep.c — the log kept in the state directory (log_keep): this
 * run's lines reach the file, the next run reads the old lines back before
 * its own, the file stays bounded (oldest lines dropped), it is made 0600,
 * and a symlink in its place is not followed. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "log.h"
#include "t.h"

static size_t file_lines(const char *path, struct buf *text)
{
	buf_reset(text);
	FILE *f = fopen(path, "r");
	if (!f)
		return 0;
	char b[4096];
	size_t n;
	while ((n = fread(b, 1, sizeof b, f)) > 0)
		buf_add(text, b, n);
	fclose(f);
	size_t lines = 0;
	for (size_t i = 0; i < text->len; i++)
		lines += text->data[i] == '\n';
	return lines;
}

#define THREADS 4
#define EACH	2000

static void *writer(void *arg)
{
	for (int i = 0; i < EACH; i++)
		plog("t", "/", "thread %ld line %d", (long)(size_t)arg, i);
	return NULL;
}

static size_t count(const char *hay, const char *needle)
{
	size_t n = 0;
	for (const char *p = hay; hay && (p = strstr(p, needle)); p++)
		n++;
	return n;
}

int main(void)
{
	char dir[] = "/tmp/primefs-logkeep.XXXXXX";
	CHECK(mkdtemp(dir) != NULL);
	char path[256];
	snprintf(path, sizeof path, "%s/log", dir);
	struct buf text, ring;
	buf_init(&text);
	buf_init(&ring);

	/* A first run: lines before log_keep reach the file too. */
	log_init(10, false);
	plog("t", "/", "before keep");
	CHECK(log_keep(dir) == 0);
	CHECK(log_keep(dir) == -EALREADY);
	plog("t", "/", "after keep");
	CHECK(file_lines(path, &text) == 2);
	CHECK(count(text.data, "before keep") == 1);
	CHECK(count(text.data, "after keep") == 1);
	struct stat st;
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	/* Bounded: never past twice the ring, the newest lines kept. */
	for (int i = 0; i < 45; i++)
		plog("t", "/", "line %d", i);
	size_t n = file_lines(path, &text);
	CHECK(n >= 10 && n <= 20);
	CHECK(count(text.data, "line 44") == 1);
	CHECK(count(text.data, "before keep") == 0);
	log_shutdown();

	/* The next run: the old lines first, then its own. */
	log_init(10, false);
	plog("t", "/", "second run");
	CHECK(log_keep(dir) == 0);
	buf_reset(&ring);
	log_render(&ring);
	size_t lines = 0;
	for (size_t i = 0; i < ring.len; i++)
		lines += ring.data[i] == '\n';
	CHECK(lines == 10);
	CHECK(count(ring.data, "line 44") == 1);
	CHECK(count(ring.data, "line 35") == 0);
	char *last = ring.data ? strstr(ring.data, "second run") : NULL;
	CHECK(last && strchr(last, '\n') == ring.data + ring.len - 1);
	CHECK(last && strstr(ring.data, "line 44") < last);
	log_shutdown();

	/* Many threads at once, rewrites among them: every line ends whole,
	 * and the file stays bounded. */
	log_init(50, false);
	CHECK(log_keep(dir) == 0);
	pthread_t th[THREADS];
	for (size_t i = 0; i < THREADS; i++)
		pthread_create(&th[i], NULL, writer, (void *)i);
	for (size_t i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	n = file_lines(path, &text);
	CHECK(n >= 50 && n <= 100 + 4 * THREADS);
	bool whole = true;
	for (char *l = text.data, *nl; l && (nl = strchr(l, '\n')); l = nl + 1)
		whole = whole && !strncmp(l + 21, "t /: thread ", 12);
	CHECK(whole);
	log_shutdown();

	/* A symlink in its place is not followed. */
	char target[256];
	snprintf(target, sizeof target, "%s/elsewhere", dir);
	unlink(path);
	CHECK(symlink(target, path) == 0);
	log_init(10, false);
	CHECK(log_keep(dir) == -ELOOP);
	plog("t", "/", "not kept");
	CHECK(access(target, F_OK) != 0);
	log_shutdown();

	unlink(path);
	snprintf(path, sizeof path, "%s/log.tmp", dir);
	unlink(path);
	rmdir(dir);
	buf_free(&text);
	buf_free(&ring);
	return t_done();
}
