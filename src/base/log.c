/* log.c — see log.h. The log is a ring of lines under one mutex held only
 * for memory operations; the per-endpoint table is tiny and fixed-size.
 *
 * stderr. A full stderr pipe (a supervisor that stopped reading) must not
 * stall the daemon, so no FUSE thread ever writes to stderr: plog queues a
 * copy of its line, under the log lock, for one writer thread that writes
 * with no lock held. The queue is bounded: when it is full, lines are
 * dropped and counted, and the count is written in their place once the
 * queue has room ("N log lines not written to stderr"). The `log` file
 * keeps every line either way. Unmounting waits for the writer a bounded
 * time, then leaves it to the process's exit. Non-blocking writes to fd 2
 * were the alternative, but O_NONBLOCK is a flag of the open file, shared
 * with whoever else holds it (often the user's terminal).
 *
 * The file. log_keep adds DIR/log: plog appends its line there after
 * releasing the lock (one O_APPEND write, so lines never interleave), and
 * the thread whose line takes the file past 2 x the ring's size rewrites it
 * with the ring's lines (beside it, then renamed, then dup2'd over the
 * descriptor the others write to). A line written during that rewrite may
 * be missing from the file, never from the ring. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ECHO_MAX      1024 /* lines waiting for stderr */
#define ECHO_SHUTDOWN 2	   /* seconds log_shutdown waits for them */

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static char **ring;
static size_t ring_cap, ring_start, ring_len;

/* The file (log_keep): descriptors set under log_lock, read unlocked. */
#define KEEP_READ_MAX (8u << 20) /* bytes of an old file read at start */
static int keep_dir = -1, keep_fd = -1;
static size_t keep_lines; /* in the file now (atomic) */
static int keep_busy;	  /* a rewrite is under way (atomic) */

/* The stderr queue, under log_lock too. */
static pthread_cond_t echo_cv; /* CLOCK_MONOTONIC; set up by log_init */
static char *echo_q[ECHO_MAX];
static size_t echo_start, echo_len;
static unsigned long echo_dropped; /* since the last note about it */
static pthread_t echo_thread;
static bool echo_on;   /* the writer takes lines (read unlocked as a hint) */
static bool echo_stop; /* log_shutdown asked it to finish */
static bool echo_done; /* it finished */
static bool echo_abandoned; /* it was stuck at shutdown: never restart */

static void echo_push(char *s)
{
	echo_q[(echo_start + echo_len) % ECHO_MAX] = s;
	echo_len++;
}

static char *drop_note(unsigned long n)
{
	struct buf b;
	buf_init(&b);
	buf_printf(&b,
		   "primefs: %lu log line%s not written to stderr (it was "
		   "not being read; see the log file)\n",
		   n, n == 1 ? "" : "s");
	return buf_steal(&b);
}

static void write_all(const char *s)
{
	size_t len = strlen(s);
	while (len) {
		ssize_t n = write(STDERR_FILENO, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return; /* stderr is gone: nothing to tell anyone */
		s += n;
		len -= (size_t)n;
	}
}

static void *echo_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&log_lock);
	for (;;) {
		while (!echo_len && !echo_stop)
			pthread_cond_wait(&echo_cv, &log_lock);
		char *s;
		if (echo_len) {
			s = echo_q[echo_start];
			echo_start = (echo_start + 1) % ECHO_MAX;
			echo_len--;
		} else if (echo_dropped) {
			s = drop_note(echo_dropped);
			echo_dropped = 0;
		} else {
			break; /* stopping, and everything is out */
		}
		pthread_mutex_unlock(&log_lock);
		write_all(s); /* may block: this thread's whole job */
		free(s);
		pthread_mutex_lock(&log_lock);
	}
	echo_done = true;
	pthread_cond_broadcast(&echo_cv);
	pthread_mutex_unlock(&log_lock);
	return NULL;
}

void log_init(size_t max_lines, bool echo_stderr)
{
	pthread_mutex_lock(&log_lock);
	if (!ring) {
		ring_cap = max_lines ? max_lines : 1;
		ring = xcalloc(ring_cap, sizeof *ring);
	}
	bool start = echo_stderr && !echo_on && !echo_abandoned;
	if (start) {
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&echo_cv, &ca);
		pthread_condattr_destroy(&ca);
		echo_stop = echo_done = false;
		/* Signals go to the threads that act on them, not here. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_SETMASK, &all, &old);
		__atomic_store_n(
		    &echo_on,
		    !pthread_create(&echo_thread, NULL, echo_main, NULL),
		    __ATOMIC_RELAXED);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	pthread_mutex_unlock(&log_lock);
}

void log_shutdown(void)
{
	pthread_mutex_lock(&log_lock);
	if (echo_on) {
		/* Give the writer a moment to empty the queue; a stderr that
		 * nobody reads must not hold the unmount up. */
		echo_stop = true;
		pthread_cond_broadcast(&echo_cv);
		struct timespec until;
		clock_gettime(CLOCK_MONOTONIC, &until);
		until.tv_sec += ECHO_SHUTDOWN;
		while (!echo_done &&
		       pthread_cond_timedwait(&echo_cv, &log_lock, &until) !=
			   ETIMEDOUT)
			;
		__atomic_store_n(&echo_on, false, __ATOMIC_RELAXED);
		if (echo_done) {
			pthread_mutex_unlock(&log_lock);
			pthread_join(echo_thread, NULL);
			pthread_mutex_lock(&log_lock);
			pthread_cond_destroy(&echo_cv);
		} else {
			/* Stuck in write(2): it keeps its queue; exit ends it.
			 */
			pthread_detach(echo_thread);
			echo_abandoned = true;
		}
	}
	for (size_t i = 0; ring && i < ring_cap; i++)
		free(ring[i]);
	free(ring);
	ring = NULL;
	ring_cap = ring_start = ring_len = 0;
	int fd = keep_fd, dir = keep_dir;
	__atomic_store_n(&keep_fd, -1, __ATOMIC_RELAXED);
	keep_dir = -1;
	pthread_mutex_unlock(&log_lock);
	/* A rewrite under way dup2s onto fd: let it finish (a moment). */
	for (int i = 0;
	     i < 2000 && __atomic_load_n(&keep_busy, __ATOMIC_ACQUIRE); i++)
		sleep_seconds(0.001);
	if (fd >= 0)
		close(fd);
	if (dir >= 0)
		close(dir);
}

/* ---- the file ---- */

static bool write_fd(int fd, const char *s, size_t len)
{
	while (len) {
		ssize_t n = write(fd, s, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return false;
		s += n;
		len -= (size_t)n;
	}
	return true;
}

/* The ring's lines, one a line, under log_lock. */
static void ring_text(struct buf *out)
{
	for (size_t i = 0; i < ring_len; i++) {
		buf_adds(out, ring[(ring_start + i) % ring_cap]);
		buf_addc(out, '\n');
	}
}

/* Replaces the file with the ring's lines; one thread at a time. */
static void keep_rewrite(void)
{
	struct buf b;
	buf_init(&b);
	pthread_mutex_lock(&log_lock);
	int dir = keep_dir, fd = keep_fd;
	size_t n = ring_len;
	/* Lines appended from here on stay counted (those that reach the
	 * old file before the dup2 are lost from it, so counted once too
	 * many: a rewrite comes early, never late). */
	size_t before = __atomic_load_n(&keep_lines, __ATOMIC_RELAXED);
	ring_text(&b);
	pthread_mutex_unlock(&log_lock);
	if (dir < 0 || fd < 0)
		goto out;
	int t =
	    openat(dir, "log.tmp",
		   O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (t < 0)
		goto out;
	bool ok = write_fd(t, b.data ? b.data : "", b.len);
	ok = close(t) == 0 && ok;
	if (!ok || renameat(dir, "log.tmp", dir, "log")) {
		unlinkat(dir, "log.tmp", 0);
		goto out;
	}
	int nfd =
	    openat(dir, "log", O_WRONLY | O_APPEND | O_NOFOLLOW | O_CLOEXEC);
	if (nfd >= 0) {
		dup2(nfd, fd); /* writers keep their descriptor number */
		close(nfd);
		if (before > n)
			__atomic_sub_fetch(&keep_lines, before - n,
					   __ATOMIC_RELAXED);
	}
out:
	buf_free(&b);
	__atomic_store_n(&keep_busy, 0, __ATOMIC_RELEASE);
}

/* Rewrites while the file is long and no other thread is at it: checked
 * again after each rewrite, once keep_busy is clear, so lines appended
 * during one (whose writers saw it busy) are never left over the bound. */
static void keep_bound(void)
{
	while (__atomic_load_n(&keep_lines, __ATOMIC_RELAXED) >= 2 * ring_cap &&
	       !__atomic_exchange_n(&keep_busy, 1, __ATOMIC_ACQUIRE))
		keep_rewrite();
}

/* Appends text (`lines` lines) to the file; rewrites it once it is long. */
static void keep_append(int fd, const char *text, size_t lines)
{
	if (!write_fd(fd, text, strlen(text)))
		return;
	__atomic_add_fetch(&keep_lines, lines, __ATOMIC_RELAXED);
	keep_bound();
}

/* Splits text into lines and keeps the last `max` (non-empty) of them. */
static size_t last_lines(char *text, size_t max, char ***out)
{
	size_t n = 0;
	for (char *p = text; *p; p++)
		n += *p == '\n';
	char **v = xcalloc(n + 1, sizeof *v);
	size_t k = 0;
	for (char *p = text, *nl; *p && (nl = strchr(p, '\n')); p = nl + 1) {
		*nl = '\0';
		if (*p)
			v[k++] = p;
	}
	size_t skip = k > max ? k - max : 0;
	*out = v;
	memmove(v, v + skip, (k - skip) * sizeof *v);
	return k - skip;
}

int log_keep(const char *dir)
{
	int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (d < 0)
		return -errno;
	/* O_NONBLOCK: a FIFO put in its place must not hang the mount. */
	int fd = openat(d, "log",
			O_RDWR | O_CREAT | O_APPEND | O_NOFOLLOW | O_CLOEXEC |
			    O_NONBLOCK,
			0600);
	struct stat st;
	int rc = 0;
	if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    fcntl(fd, F_SETFL, O_APPEND)) {
		rc = fd < 0 ? -errno : -EINVAL;
		goto fail;
	}
	/* The old file's tail (a whole line onwards). */
	off_t from = st.st_size > (off_t)KEEP_READ_MAX
			 ? st.st_size - (off_t)KEEP_READ_MAX
			 : 0;
	size_t len = (size_t)(st.st_size - from);
	char *text = xmalloc(len + 1);
	ssize_t got = pread(fd, text, len, from);
	text[got > 0 ? got : 0] = '\0';
	char *start = text;
	if (from > 0 && (start = strchr(text, '\n')))
		start++;
	char **old;
	size_t n_old = last_lines(start ? start : text + strlen(text),
				  ring_cap ? ring_cap : 1, &old);
	size_t in_file = 0;
	for (char *p = text; *p; p++)
		in_file += *p == '\n';

	/* Old lines first, then this run's, the newest ring_cap of them. */
	struct buf mine;
	buf_init(&mine);
	pthread_mutex_lock(&log_lock);
	if (!ring || keep_fd >= 0) {
		pthread_mutex_unlock(&log_lock);
		free(old);
		free(text);
		rc = -EALREADY;
		goto fail;
	}
	ring_text(&mine);
	size_t n_mine = ring_len;
	size_t room = ring_cap - ring_len;
	size_t take = n_old < room ? n_old : room;
	char **v = xcalloc(ring_cap, sizeof *v);
	for (size_t i = 0; i < take; i++)
		v[i] = xstrdup(old[n_old - take + i]);
	for (size_t i = 0; i < ring_len; i++)
		v[take + i] = ring[(ring_start + i) % ring_cap];
	free(ring);
	ring = v;
	ring_start = 0;
	ring_len += take;
	keep_dir = d;
	__atomic_store_n(&keep_lines, in_file, __ATOMIC_RELAXED);
	__atomic_store_n(&keep_fd, fd, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&log_lock);
	free(old);
	free(text);
	if (mine.len)
		keep_append(fd, mine.data, n_mine);
	buf_free(&mine);
	return 0;
fail:
	if (fd >= 0)
		close(fd);
	close(d);
	return rc;
}

void plog(const char *op, const char *path, const char *fmt, ...)
{
	struct buf b;
	char when[32];
	buf_init(&b);
	fmt_iso8601(when, time(NULL));
	buf_printf(&b, "%s %s %s: ", when, op ? op : "-",
		   path && *path ? path : "-");
	va_list ap;
	va_start(ap, fmt);
	buf_vprintf(&b, fmt, ap);
	va_end(ap);
	/* One entry is one line, whatever a server put in its message. */
	for (size_t i = 0; i < b.len; i++)
		if ((unsigned char)b.data[i] < 0x20 || b.data[i] == 0x7f)
			b.data[i] = ' ';
	char *line = buf_steal(&b);
	/* The copy for stderr, made before taking the lock. */
	char *echo_line = NULL;
	if (__atomic_load_n(&echo_on, __ATOMIC_RELAXED)) {
		struct buf e;
		buf_init(&e);
		buf_printf(&e, "primefs: %s\n", line);
		echo_line = buf_steal(&e);
	}
	char *file_line = NULL;
	if (__atomic_load_n(&keep_fd, __ATOMIC_RELAXED) >= 0) {
		struct buf f;
		buf_init(&f);
		buf_printf(&f, "%s\n", line);
		file_line = buf_steal(&f);
	}

	pthread_mutex_lock(&log_lock);
	if (echo_line && echo_on && !echo_stop) {
		if (echo_dropped && echo_len + 2 <= ECHO_MAX) {
			/* Where the dropped lines were, once there is room. */
			echo_push(drop_note(echo_dropped));
			echo_dropped = 0;
		}
		if (echo_len < ECHO_MAX) {
			echo_push(echo_line);
			echo_line = NULL;
			pthread_cond_signal(&echo_cv);
		} else {
			echo_dropped++;
		}
	}
	if (ring) {
		size_t slot = (ring_start + ring_len) % ring_cap;
		if (ring_len == ring_cap) {
			free(ring[ring_start]);
			ring_start = (ring_start + 1) % ring_cap;
			slot = (ring_start + ring_len - 1) % ring_cap;
		} else {
			ring_len++;
		}
		ring[slot] = line;
		line = NULL;
	}
	int fd = keep_fd;
	pthread_mutex_unlock(&log_lock);
	if (file_line && fd >= 0)
		keep_append(fd, file_line, 1);
	free(file_line);
	free(line);
	free(echo_line);
}

void log_render(struct buf *out)
{
	pthread_mutex_lock(&log_lock);
	ring_text(out);
	pthread_mutex_unlock(&log_lock);
}

/* ---- stats ---- */

#define MAX_ENDPOINTS 32

static pthread_mutex_t stats_lock = PTHREAD_MUTEX_INITIALIZER;
static unsigned long counters[ST_COUNTERS];
static struct {
	char name[64];
	unsigned long calls;
} endpoints[MAX_ENDPOINTS];
static size_t n_endpoints;

static const char *const counter_names[ST_COUNTERS] = {
    [ST_RETRIES] = "retries",
    [ST_RATE_LIMITED] = "rate_limited",
    [ST_API_ERRORS] = "api_errors",
    [ST_CACHE_HITS] = "cache_hits",
    [ST_CACHE_MISSES] = "cache_misses",
    [ST_STALE_SERVED] = "stale_served",
    [ST_SSH_SESSIONS] = "ssh_sessions",
    [ST_SSH_COMMANDS] = "ssh_commands",
    [ST_SSH_LOST] = "ssh_lost",
    [ST_GUARDS_FIRED] = "guards_fired",
    [ST_FUSE_LOOKUP] = "fuse_lookup",
    [ST_FUSE_GETATTR] = "fuse_getattr",
    [ST_FUSE_READDIR] = "fuse_readdir",
    [ST_FUSE_OPENDIR] = "fuse_opendir",
    [ST_FUSE_RELEASEDIR] = "fuse_releasedir",
    [ST_FUSE_OPEN] = "fuse_open",
    [ST_FUSE_READ] = "fuse_read",
    [ST_FUSE_FLUSH] = "fuse_flush",
    [ST_FUSE_RELEASE] = "fuse_release",
    [ST_FUSE_FORGET] = "fuse_forget",
    [ST_FUSE_INODES] = "fuse_inodes",
    [ST_KERNEL_INVAL] = "kernel_invalidations",
    [ST_PODFS_KEPT] = "podfs_attrs_kept",
    [ST_PODFS_WAITED] = "podfs_attrs_waited",
    [ST_PODFS_AHEAD] = "podfs_stats_ahead",
};

void stats_count(enum stat_counter c)
{
	pthread_mutex_lock(&stats_lock);
	counters[c]++;
	pthread_mutex_unlock(&stats_lock);
}

void stats_add(enum stat_counter c, long delta)
{
	pthread_mutex_lock(&stats_lock);
	counters[c] += (unsigned long)delta;
	pthread_mutex_unlock(&stats_lock);
}

void stats_api_call(const char *endpoint)
{
	pthread_mutex_lock(&stats_lock);
	size_t i;
	for (i = 0; i < n_endpoints; i++)
		if (!strcmp(endpoints[i].name, endpoint))
			break;
	if (i == n_endpoints && n_endpoints < MAX_ENDPOINTS) {
		snprintf(endpoints[i].name, sizeof endpoints[i].name, "%s",
			 endpoint);
		n_endpoints++;
	}
	if (i < n_endpoints)
		endpoints[i].calls++;
	pthread_mutex_unlock(&stats_lock);
}

static void (*source_render)(void *arg, struct buf *out);
static void *source_arg;

void stats_set_source(void (*render)(void *arg, struct buf *out), void *arg)
{
	pthread_mutex_lock(&stats_lock);
	source_render = render;
	source_arg = arg;
	pthread_mutex_unlock(&stats_lock);
}

void stats_render(struct buf *out)
{
	pthread_mutex_lock(&stats_lock);
	unsigned long total = 0;
	for (size_t i = 0; i < n_endpoints; i++)
		total += endpoints[i].calls;
	buf_printf(out, "api_calls %lu\n", total);
	for (size_t i = 0; i < n_endpoints; i++)
		buf_printf(out, "%s %lu\n", endpoints[i].name,
			   endpoints[i].calls);
	for (int c = 0; c < ST_COUNTERS; c++)
		buf_printf(out, "%s %lu\n", counter_names[c], counters[c]);
	void (*render)(void *, struct buf *) = source_render;
	void *arg = source_arg;
	pthread_mutex_unlock(&stats_lock);
	if (render)
		render(arg, out);
}
