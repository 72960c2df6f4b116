/* version.h: the version both programs report (the build may set it). */
#ifndef USERREG_VERSION_H
#define USERREG_VERSION_H

#ifndef USERREG_VERSION
#define USERREG_VERSION "1.0.0"
#endif

#endif
