/* support.h: helpers shared by the unit suites. */
#ifndef USERREG_TEST_SUPPORT_H
#define USERREG_TEST_SUPPORT_H

#include <stdint.h>

/*
 * Removes a test's scratch directory dir with the plain files directly
 * in it (a registry and its -wal and -shm files). Missing is fine.
 */
void support_remove_dir(const char *dir);

/* The monotonic clock in milliseconds, to time a wait or a deadline. */
int64_t support_mono_ms(void);

#endif
