/* test_log.c — the log's echo to stderr when stderr is a pipe that nobody
 * reads: plog never blocks, the `log` ring keeps every line, lines past the
 * bounded queue are dropped and counted, and the count reaches stderr in
 * their place once the pipe is read again. */
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <unistd.h>

#include "log.h"
#include "t.h"

#define LINES 3000

static int rfd;
static struct buf got;
static pthread_mutex_t got_mu = PTHREAD_MUTEX_INITIALIZER;

static void *drain(void *arg)
{
	(void)arg;
	char b[65536];
	ssize_t n;
	while ((n = read(rfd, b, sizeof b)) > 0) {
		pthread_mutex_lock(&got_mu);
		buf_add(&got, b, (size_t)n);
		pthread_mutex_unlock(&got_mu);
	}
	return NULL;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;
	for (const char *p = hay; (p = strstr(p, needle)); p++)
		n++;
	return n;
}

int main(void)
{
	alarm(60); /* a hang is a failure, not a stuck test run */
	int p[2];
	if (pipe(p))
		return 1;
	rfd = p[0];
	int saved = dup(STDERR_FILENO);
	dup2(p[1], STDERR_FILENO);
	close(p[1]);
	/* Fill the pipe through a write end of its own: O_NONBLOCK there
	 * leaves fd 2 blocking. */
	char path[64];
	snprintf(path, sizeof path, "/proc/self/fd/%d", rfd);
	int fill = open(path, O_WRONLY | O_NONBLOCK);
	CHECK(fill >= 0);
	char junk[4096];
	memset(junk, '.', sizeof junk);
	while (write(fill, junk, sizeof junk) > 0)
		;
	close(fill);

	log_init(50, true);
	for (int i = 0; i < LINES; i++)
		plog("test", "/x", "line %d", i);
	CHECK(1); /* got here: plog did not block */
	struct buf b;
	buf_init(&b);
	log_render(&b);
	CHECK(count(b.data, "\n") == 50);
	CHECK(strstr(b.data, "line 2999\n") != NULL);
	buf_free(&b);

	/* Someone reads again: what was queued comes out, then a note about
	 * what was not, before the next line. */
	buf_init(&got);
	pthread_t t;
	pthread_create(&t, NULL, drain, NULL);
	/* Until the backlog is out: nothing new for 0.3 s. */
	size_t last = (size_t)-1;
	for (int waited = 0; waited < 100; waited++) {
		pthread_mutex_lock(&got_mu);
		size_t len = got.len;
		pthread_mutex_unlock(&got_mu);
		if (len == last)
			break;
		last = len;
		usleep(300000);
	}
	for (int i = 0; i < 50; i++)
		plog("test", "/x", "after %d", i);
	log_shutdown();
	dup2(saved, STDERR_FILENO); /* the last write end: drain sees EOF */
	close(saved);
	pthread_join(t, NULL);
	buf_addc(&got, '\0');

	const char *text = got.data;
	int written = count(text, "primefs: ") - 1;
	const char *note = strstr(text, " log lines not written to stderr");
	CHECK(note != NULL);
	const char *num = note;
	while (num > text && num[-1] >= '0' && num[-1] <= '9')
		num--;
	long dropped = note ? strtol(num, NULL, 10) : 0;
	printf("# %d lines written, %ld dropped\n", written - 50, dropped);
	CHECK(dropped > 0);
	CHECK(written - 50 + dropped == LINES);
	CHECK(count(text, "test /x: line ") + dropped == LINES);
	CHECK(count(text, "test /x: after ") == 50);
	const char *after = strstr(text, "test /x: after 0");
	CHECK(note && after && note < after);
	CHECK(strstr(text, "test /x: line 0\n") != NULL);
	buf_free(&got);
	close(rfd);
	return t_done();
}
