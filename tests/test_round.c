#include "tests/testutil.h"
static Suite *mk(void){Suite *s=suite_create("round");return s;}
QS_TEST_MAIN(mk)
