package mcsconformance

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"sync"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	appslisters "k8s.io/client-go/listers/apps/v1"
	corelisters "k8s.io/client-go/listers/core/v1"
	discoverylisters "k8s.io/client-go/listers/discovery/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
)

// endpointSliceController is the managed-by value of the EndpointSlices
// Kubernetes' own controller writes for a Service. The suite tells them
// apart from an MCS implementation's by it.
const endpointSliceController = "endpointslice-controller.k8s.io"

// StandIn does, in one control plane and only in the namespaces whose name
// starts with NamespacePrefix, what the kubelet and kube-controller-manager
// of a real cluster would do for the conformance suite's objects, and no
// more:
//
//   - a Pod is reported Running and Ready, with an address from Pods (the
//     kubelet's part; nothing runs, which is why the specs that exec into a
//     pod are not run);
//   - a Service whose selector matches a Deployment's pods gets the
//     EndpointSlice the EndpointSlice controller would write for the
//     Deployment's replicas (the Deployment, ReplicaSet and EndpointSlice
//     controllers' part);
//   - a deleted namespace is emptied and then goes away (the namespace
//     controller's part), so that what crossmap exported from it is
//     unexported as in a real cluster.
//
// It never touches another namespace, and never an object crossmap owns
// except by emptying a namespace being deleted, as Kubernetes would.
type StandIn struct {
	// Cluster names the plane in logs.
	Cluster   string
	Client    kubernetes.Interface
	Dynamic   dynamic.Interface
	Discovery discovery.DiscoveryInterface
	// NamespacePrefix selects the suite's namespaces (mcs-conformance-<n>).
	NamespacePrefix string
	// Pods is where pod addresses come from. The caller picks a prefix its
	// own network namespace holds; nothing is ever sent to these addresses.
	Pods netip.Prefix
	Log  logr.Logger

	mu    sync.Mutex
	addrs map[string]netip.Addr
	next  netip.Addr
}

// Run works until ctx ends. It is level-triggered: any change in a
// namespace of the suite's makes it bring that whole namespace to what the
// cluster's own components would have made of it.
func (s *StandIn) Run(ctx context.Context) error {
	factory := informers.NewSharedInformerFactory(s.Client, 0)
	pods := factory.Core().V1().Pods()
	services := factory.Core().V1().Services()
	deployments := factory.Apps().V1().Deployments()
	namespaces := factory.Core().V1().Namespaces()
	endpointSlices := factory.Discovery().V1().EndpointSlices()
	queue := workqueue.NewTypedRateLimitingQueue(workqueue.DefaultTypedControllerRateLimiter[string]())
	enqueue := func(obj any) {
		if d, ok := obj.(cache.DeletedFinalStateUnknown); ok {
			obj = d.Obj
		}
		o, ok := obj.(metav1.Object)
		if !ok {
			return
		}
		ns := o.GetNamespace()
		if ns == "" { // a Namespace itself
			ns = o.GetName()
		}
		if strings.HasPrefix(ns, s.NamespacePrefix) {
			queue.Add(ns)
		}
	}
	handler := cache.ResourceEventHandlerFuncs{AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue}
	for _, inf := range []cache.SharedIndexInformer{pods.Informer(), services.Informer(), deployments.Informer(),
		namespaces.Informer(), endpointSlices.Informer()} {
		if _, err := inf.AddEventHandler(handler); err != nil {
			return fmt.Errorf("stand-in for %s: add event handler: %w", s.Cluster, err)
		}
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return fmt.Errorf("stand-in for %s: sync the cache of %v", s.Cluster, typ)
		}
	}
	go func() {
		<-ctx.Done()
		queue.ShutDown()
	}()
	l := listers{pods: pods.Lister(), services: services.Lister(), deployments: deployments.Lister(),
		namespaces: namespaces.Lister(), endpointSlices: endpointSlices.Lister()}
	for {
		ns, quit := queue.Get()
		if quit {
			return nil
		}
		if err := s.sync(ctx, l, ns); err != nil {
			if ctx.Err() == nil {
				s.Log.V(1).Info("Stand-in sync failed, retrying", "cluster", s.Cluster, "namespace", ns, "err", err)
			}
			queue.AddRateLimited(ns)
		} else {
			queue.Forget(ns)
		}
		queue.Done(ns)
	}
}

type listers struct {
	pods           corelisters.PodLister
	services       corelisters.ServiceLister
	deployments    appslisters.DeploymentLister
	namespaces     corelisters.NamespaceLister
	endpointSlices discoverylisters.EndpointSliceLister
}

func (s *StandIn) sync(ctx context.Context, l listers, ns string) error {
	namespace, err := l.namespaces.Get(ns)
	if apierrors.IsNotFound(err) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("get namespace %s: %w", ns, err)
	}
	if namespace.DeletionTimestamp != nil {
		return s.deleteNamespace(ctx, namespace)
	}
	var errs []error
	pods, err := l.pods.Pods(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list pods in %s: %w", ns, err)
	}
	for _, p := range pods {
		if p.Status.Phase != corev1.PodRunning && p.DeletionTimestamp == nil {
			errs = append(errs, s.startPod(ctx, p))
		}
	}
	services, err := l.services.Services(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list services in %s: %w", ns, err)
	}
	deployments, err := l.deployments.Deployments(ns).List(labels.Everything())
	if err != nil {
		return fmt.Errorf("list deployments in %s: %w", ns, err)
	}
	for _, svc := range services {
		existing, err := l.endpointSlices.EndpointSlices(ns).Get(sliceName(svc))
		if err != nil && !apierrors.IsNotFound(err) {
			errs = append(errs, err)
			continue
		}
		if apierrors.IsNotFound(err) {
			existing = nil
		}
		errs = append(errs, s.syncSlice(ctx, svc, deployments, existing))
	}
	return errors.Join(errs...)
}

// startPod reports p Running and Ready, as a kubelet would once its
// containers started.
func (s *StandIn) startPod(ctx context.Context, p *corev1.Pod) error {
	pod := p.DeepCopy()
	now := metav1.Now()
	ip := s.addr("pod/" + string(p.UID)).String()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP, pod.Status.PodIPs = ip, []corev1.PodIP{{IP: ip}}
	pod.Status.StartTime = &now
	pod.Status.Conditions = nil
	for _, t := range []corev1.PodConditionType{corev1.PodScheduled, corev1.PodInitialized, corev1.ContainersReady, corev1.PodReady} {
		pod.Status.Conditions = append(pod.Status.Conditions, corev1.PodCondition{Type: t, Status: corev1.ConditionTrue, LastTransitionTime: now})
	}
	pod.Status.ContainerStatuses = nil
	for _, c := range pod.Spec.Containers {
		pod.Status.ContainerStatuses = append(pod.Status.ContainerStatuses, corev1.ContainerStatus{
			Name: c.Name, Image: c.Image, Ready: true, Started: ptr.To(true),
			State: corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: now}},
		})
	}
	if _, err := s.Client.CoreV1().Pods(pod.Namespace).UpdateStatus(ctx, pod, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("report pod %s/%s running: %w", pod.Namespace, pod.Name, err)
	}
	s.Log.V(1).Info("Reported pod running", "cluster", s.Cluster, "pod", pod.Namespace+"/"+pod.Name, "ip", ip)
	return nil
}

func sliceName(svc *corev1.Service) string { return svc.Name + "-standin" }

// syncSlice writes the EndpointSlice Kubernetes would keep for svc: one
// ready endpoint per replica of every Deployment whose pods svc selects.
func (s *StandIn) syncSlice(ctx context.Context, svc *corev1.Service, deployments []*appsv1.Deployment, existing *discoveryv1.EndpointSlice) error {
	slices := s.Client.DiscoveryV1().EndpointSlices(svc.Namespace)
	var endpoints []discoveryv1.Endpoint
	if len(svc.Spec.Selector) > 0 && svc.Spec.Type != corev1.ServiceTypeExternalName {
		sel := labels.SelectorFromSet(svc.Spec.Selector)
		for _, d := range deployments {
			if !sel.Matches(labels.Set(d.Spec.Template.Labels)) {
				continue
			}
			for i := range ptr.Deref(d.Spec.Replicas, 1) {
				addr := s.addr(fmt.Sprintf("deployment/%s/%d", d.UID, i)).String()
				endpoints = append(endpoints, discoveryv1.Endpoint{
					Addresses: []string{addr},
					Conditions: discoveryv1.EndpointConditions{
						Ready: ptr.To(true), Serving: ptr.To(true), Terminating: ptr.To(false)},
				})
			}
		}
	}
	if len(endpoints) == 0 {
		if existing == nil {
			return nil
		}
		err := slices.Delete(ctx, existing.Name, metav1.DeleteOptions{})
		if err != nil && !apierrors.IsNotFound(err) {
			return fmt.Errorf("delete endpointslice %s/%s: %w", existing.Namespace, existing.Name, err)
		}
		return nil
	}
	want := &discoveryv1.EndpointSlice{
		ObjectMeta: metav1.ObjectMeta{
			Namespace: svc.Namespace, Name: sliceName(svc),
			Labels: map[string]string{discoveryv1.LabelServiceName: svc.Name, discoveryv1.LabelManagedBy: endpointSliceController},
			OwnerReferences: []metav1.OwnerReference{{APIVersion: "v1", Kind: "Service", Name: svc.Name, UID: svc.UID,
				Controller: ptr.To(true), BlockOwnerDeletion: ptr.To(true)}},
		},
		AddressType: discoveryv1.AddressTypeIPv4,
		Endpoints:   endpoints,
	}
	for _, p := range svc.Spec.Ports {
		port := p.Port
		if p.TargetPort.IntVal != 0 {
			port = p.TargetPort.IntVal
		}
		want.Ports = append(want.Ports, discoveryv1.EndpointPort{Name: ptr.To(p.Name), Protocol: ptr.To(p.Protocol), Port: ptr.To(port)})
	}
	if existing == nil {
		if _, err := slices.Create(ctx, want, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("create endpointslice %s/%s: %w", want.Namespace, want.Name, err)
		}
		return nil
	}
	if equality.Semantic.DeepEqual(existing.Endpoints, want.Endpoints) && equality.Semantic.DeepEqual(existing.Ports, want.Ports) &&
		equality.Semantic.DeepEqual(existing.Labels, want.Labels) {
		return nil
	}
	want.ResourceVersion = existing.ResourceVersion
	if _, err := slices.Update(ctx, want, metav1.UpdateOptions{}); err != nil {
		return fmt.Errorf("update endpointslice %s/%s: %w", want.Namespace, want.Name, err)
	}
	return nil
}

// deleteNamespace does what the namespace controller does: delete every
// namespaced object in ns, and once none is left, drop the namespace's
// finalizer so that it goes.
func (s *StandIn) deleteNamespace(ctx context.Context, ns *corev1.Namespace) error {
	lists, err := s.Discovery.ServerPreferredNamespacedResources()
	if err != nil && !discovery.IsGroupDiscoveryFailedError(err) {
		return fmt.Errorf("discover namespaced resources: %w", err)
	}
	var errs []error
	left := 0
	for _, list := range lists {
		gv, err := schema.ParseGroupVersion(list.GroupVersion)
		if err != nil {
			continue
		}
		for _, r := range list.APIResources {
			if !slices.Contains(r.Verbs, "deletecollection") || !slices.Contains(r.Verbs, "list") {
				continue
			}
			res := s.Dynamic.Resource(gv.WithResource(r.Name)).Namespace(ns.Name)
			err := res.DeleteCollection(ctx, metav1.DeleteOptions{GracePeriodSeconds: ptr.To(int64(0))}, metav1.ListOptions{})
			if err != nil && !apierrors.IsNotFound(err) {
				errs = append(errs, fmt.Errorf("delete %s in %s: %w", r.Name, ns.Name, err))
				continue
			}
			remaining, err := res.List(ctx, metav1.ListOptions{})
			if err != nil {
				errs = append(errs, fmt.Errorf("list %s in %s: %w", r.Name, ns.Name, err))
				continue
			}
			left += len(remaining.Items)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if left > 0 {
		return fmt.Errorf("namespace %s still holds %d objects", ns.Name, left)
	}
	if len(ns.Spec.Finalizers) == 0 {
		return nil
	}
	done := ns.DeepCopy()
	done.Spec.Finalizers = nil
	if _, err := s.Client.CoreV1().Namespaces().Finalize(ctx, done, metav1.UpdateOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("finalize namespace %s: %w", ns.Name, err)
	}
	s.Log.V(1).Info("Deleted namespace", "cluster", s.Cluster, "namespace", ns.Name)
	return nil
}

// addr is the address of key (a pod, or a Deployment's replica), the same
// every time it is asked.
func (s *StandIn) addr(key string) netip.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	if a, ok := s.addrs[key]; ok {
		return a
	}
	if s.addrs == nil {
		s.addrs = map[string]netip.Addr{}
		s.next = s.Pods.Masked().Addr()
	}
	s.next = s.next.Next()
	if !s.Pods.Contains(s.next) {
		// Wrap around: a long run reuses the addresses of namespaces long gone.
		s.next = s.Pods.Masked().Addr().Next()
	}
	s.addrs[key] = s.next
	return s.next
}
