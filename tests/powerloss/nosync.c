/* nosync.c: LD_PRELOAD library whose fsync and fdatasync sync nothing */

/*
 * Only for tests/powerloss: a service run with it acknowledges writes that
 * are not on disk, which the crash harness must then catch.
 */

#define _POSIX_C_SOURCE 200809L

#include <unistd.h>

int
fsync(int fd)
{
	(void)fd;
	return 0;
}

int
fdatasync(int fd)
{
	(void)fd;
	return 0;
}
