/* support.c: helpers shared by the unit suites. */
#include "support.h"

#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

void
support_remove_dir(const char *dir)
{
	char path[1024];
	struct dirent *de;
	DIR *d;

	if ((d = opendir(dir)) != NULL) {
		while ((de = readdir(d)) != NULL) {
			if (strcmp(de->d_name, ".") == 0 ||
			    strcmp(de->d_name, "..") == 0)
				continue;
			snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
			unlink(path);
		}
		closedir(d);
	}
	rmdir(dir);
}
