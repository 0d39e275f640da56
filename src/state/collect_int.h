/* collect_int.h — private to collect.c (the lists and the files kept) and
 * collect_copy.c (bringing them back over SFTP). */
#ifndef PRIMEFS_COLLECT_INT_H
#define PRIMEFS_COLLECT_INT_H

#include <pthread.h>

#include "collect.h"

struct collect {
	struct collect_opts o;
	int list_fd;	    /* collect/ */
	int files_fd;	    /* files/ */
	int tmp_fd;	    /* files/.tmp/ */
	pthread_mutex_t mu; /* the lists' files (local, small) */
	unsigned long tmp_seq;
};

/* The pod's list as collect_parse gives it (none: n == 0). */
void collect_list(struct collect *c, const char *key, struct strlist *out);
/* The name of a new temporary file in files/.tmp (malloc'd). */
char *collect_tmp_name(struct collect *c, const char *id);

#endif
