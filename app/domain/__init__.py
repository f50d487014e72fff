"""The credential rules as plain functions: no Flask, no database. The repositories apply
them to the objects they load and save."""
