from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import render


@staff_member_required
def audit_overview(request):
    return render(request, "judges/audit.html", {"nav": "audit"})
