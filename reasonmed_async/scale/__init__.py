"""Running past one machine: storage location guard, sharded runs and their merge, batch transport."""
