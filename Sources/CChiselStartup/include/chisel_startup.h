#ifndef CHISEL_STARTUP_H
#define CHISEL_STARTUP_H

// Linking this target into an executable sets up malloc for running networks before main
// starts (see startup.c); it has nothing to call.

#endif
