"""bench: time, size, memory and accuracy of any artifact or checkpoint on this device, one result file per run."""
