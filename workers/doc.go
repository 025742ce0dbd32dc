// Package workers holds what runs jobs: the executors that run a twin's
// lifecycle phases (the local executor here; a Kubernetes one can be
// added beside it), and, with the job queue, everything asynq.
//
// An executor knows nothing of the catalog or of how a job came to run:
// it is given the files of a twin and of the items it uses, the inputs
// and the phases, lays them out in a workspace shaped like a DTaaS
// library, runs the phases, and reports what happened and what the twin
// wrote. It must not import a database driver or the HTTP layer.
package workers
