/* core/yaml.c — to be written. */
