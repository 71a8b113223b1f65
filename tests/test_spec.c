#include "tests/testutil.h"
static Suite *mk(void){Suite *s=suite_create("spec");return s;}
QS_TEST_MAIN(mk)
