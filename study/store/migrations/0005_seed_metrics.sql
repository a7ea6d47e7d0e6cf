-- What a method logged with ctx.log(name, value, step), per seed, for its author to read.
ALTER TABLE seed_results ADD COLUMN metrics VARCHAR;
