// Command gofloor is the benchmark's Go floor: a client-go program that makes exactly
// the writes a scenario needs, with nothing else on the path (no informers, no reads).
//
// It reads a plan (JSON, from the file given by -plan) naming request bodies and
// scenarios; each scenario is a list of items, and each item is a short sequence of
// writes to one namespace, made in order by one worker. For every concurrency in the
// plan it runs every scenario in turn and prints one JSON line per timed scenario:
// wall seconds, CPU seconds of this process and requests made. Untimed scenarios undo
// the timed ones so that the next concurrency starts from the same cluster.
//
// Client-side rate limiting is off (client-go's default is 5 requests per second), and
// the client is client-go's default otherwise: JSON, one HTTP/2 connection.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"sync"
	"syscall"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

// processStart is as close to exec as a Go program gets without reading /proc.
var processStart = time.Now()

// Write is one request. Body names an entry of Plan.Bodies: a Secret for create and
// update, a JSON merge patch for patch-account; delete needs none.
type Write struct {
	Op        string `json:"op"` // create-secret, update-secret, delete-secret, patch-account, patch-configmap
	Namespace string `json:"namespace"`
	Name      string `json:"name,omitempty"`
	Body      string `json:"body,omitempty"`
}

type Scenario struct {
	Name  string    `json:"name"`
	Timed bool      `json:"timed"`
	Items [][]Write `json:"items"`
}

type Plan struct {
	Concurrency []int                      `json:"concurrency"`
	Bodies      map[string]json.RawMessage `json:"bodies"`
	Scenarios   []Scenario                 `json:"scenarios"`
}

// Result is one printed line.
type Result struct {
	Concurrency int     `json:"concurrency"`
	Scenario    string  `json:"scenario"`
	Seconds     float64 `json:"seconds"`
	CPUSeconds  float64 `json:"cpuSeconds"`
	Requests    int     `json:"requests"`
}

type floor struct {
	client  kubernetes.Interface
	secrets map[string]*corev1.Secret
	patches map[string][]byte
}

func main() {
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig of the cluster to write to")
	planPath := flag.String("plan", "", "the plan (JSON)")
	flag.Parse()
	if err := run(*kubeconfig, *planPath); err != nil {
		fmt.Fprintln(os.Stderr, "gofloor:", err)
		os.Exit(1)
	}
}

func run(kubeconfig, planPath string) error {
	raw, err := os.ReadFile(planPath)
	if err != nil {
		return err
	}
	var plan Plan
	if err := json.Unmarshal(raw, &plan); err != nil {
		return fmt.Errorf("reading the plan: %w", err)
	}
	config, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	config.QPS = -1 // no client-side rate limit: the floor is the server's pace
	client, err := kubernetes.NewForConfig(config)
	if err != nil {
		return err
	}
	f := &floor{client: client, secrets: map[string]*corev1.Secret{}, patches: map[string][]byte{}}
	if err := f.decodeBodies(plan); err != nil {
		return err
	}
	out := json.NewEncoder(os.Stdout)
	if err := out.Encode(map[string]float64{"startupSeconds": time.Since(processStart).Seconds()}); err != nil {
		return err
	}
	ctx := context.Background()
	for _, concurrency := range plan.Concurrency {
		for _, scenario := range plan.Scenarios {
			result, err := f.execute(ctx, scenario, concurrency)
			if err != nil {
				return fmt.Errorf("%s at concurrency %d: %w", scenario.Name, concurrency, err)
			}
			if scenario.Timed {
				if err := out.Encode(result); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// decodeBodies turns every body the plan's writes name into what the client sends,
// before any clock starts.
func (f *floor) decodeBodies(plan Plan) error {
	for _, scenario := range plan.Scenarios {
		for _, item := range scenario.Items {
			for _, write := range item {
				if write.Body == "" {
					continue
				}
				body, ok := plan.Bodies[write.Body]
				if !ok {
					return fmt.Errorf("the plan has no body %q", write.Body)
				}
				switch write.Op {
				case "create-secret", "update-secret":
					if _, done := f.secrets[write.Body]; done {
						continue
					}
					secret := &corev1.Secret{}
					if err := json.Unmarshal(body, secret); err != nil {
						return fmt.Errorf("body %q is not a Secret: %w", write.Body, err)
					}
					f.secrets[write.Body] = secret
				case "patch-account", "patch-configmap":
					f.patches[write.Body] = body
				}
			}
		}
	}
	return nil
}

// execute runs one scenario's items on `concurrency` workers and times it.
func (f *floor) execute(ctx context.Context, scenario Scenario, concurrency int) (Result, error) {
	items := make(chan []Write)
	errs := make(chan error, concurrency)
	var wg sync.WaitGroup
	cpuBefore := cpuSeconds()
	started := time.Now()
	for range concurrency {
		wg.Go(func() {
			for item := range items {
				for _, write := range item {
					if err := f.write(ctx, write); err != nil {
						errs <- fmt.Errorf("%s %s/%s: %w", write.Op, write.Namespace, write.Name, err)
						for range items {
						}
						return
					}
				}
			}
		})
	}
	requests := 0
	for _, item := range scenario.Items {
		items <- item
		requests += len(item)
	}
	close(items)
	wg.Wait()
	elapsed := time.Since(started).Seconds()
	cpu := cpuSeconds() - cpuBefore
	close(errs)
	if err := <-errs; err != nil {
		return Result{}, err
	}
	return Result{concurrency, scenario.Name, elapsed, cpu, requests}, nil
}

func (f *floor) write(ctx context.Context, write Write) error {
	switch write.Op {
	case "create-secret":
		secret := f.secrets[write.Body].DeepCopy()
		secret.Namespace = write.Namespace
		_, err := f.client.CoreV1().Secrets(write.Namespace).Create(ctx, secret, metav1.CreateOptions{})
		return err
	case "update-secret":
		secret := f.secrets[write.Body].DeepCopy()
		secret.Namespace = write.Namespace
		_, err := f.client.CoreV1().Secrets(write.Namespace).Update(ctx, secret, metav1.UpdateOptions{})
		return err
	case "delete-secret":
		return f.client.CoreV1().Secrets(write.Namespace).Delete(ctx, write.Name, metav1.DeleteOptions{})
	case "patch-account":
		_, err := f.client.CoreV1().ServiceAccounts(write.Namespace).Patch(
			ctx, write.Name, types.MergePatchType, f.patches[write.Body], metav1.PatchOptions{})
		return err
	case "patch-configmap":
		// The request loop: one small merge patch after another, at concurrency 1, the
		// per-request cost of the client itself.
		_, err := f.client.CoreV1().ConfigMaps(write.Namespace).Patch(
			ctx, write.Name, types.MergePatchType, f.patches[write.Body], metav1.PatchOptions{})
		return err
	}
	return fmt.Errorf("unknown op %q", write.Op)
}

// cpuSeconds is this process's user and system CPU time so far.
func cpuSeconds() float64 {
	var usage syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &usage); err != nil {
		return 0
	}
	return time.Duration(usage.Utime.Nano() + usage.Stime.Nano()).Seconds()
}
